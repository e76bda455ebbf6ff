import { keyFingerprint } from '../api/api-key.guard.js';

export type CheckStatus = 'ok' | 'warn' | 'fail';

/** One line of a report: what was checked, and for a warning or failure, what to do about it. */
export interface Check {
  readonly status: CheckStatus;
  readonly text: string;
  readonly fix?: string;
}

/** Where a command writes its text: standard output in the CLI, an array in tests. */
export type Print = (line: string) => void;

const MARKS: Record<CheckStatus, string> = { ok: '✓', warn: '⚠', fail: '✗' };

export function printChecks(print: Print, checks: readonly Check[]): void {
  for (const check of checks) {
    print(`${MARKS[check.status]} ${check.text}`);
    if (check.fix && check.status !== 'ok') print(`    → ${check.fix}`);
  }
}

export function hasFailure(checks: readonly Check[]): boolean {
  return checks.some((c) => c.status === 'fail');
}

/** Enough of a one-time value to recognise it, never enough to use it: its length and at most 3 characters at each end. */
export function maskValue(value: string): string {
  const length = `${value.length} character${value.length === 1 ? '' : 's'}`;
  return value.length >= 12 ? `${length}, "${value.slice(0, 3)}…${value.slice(-3)}"` : length;
}

/** A stable label for an API key: the fingerprint the service logs and counts it by. */
export function fingerprint(secret: string): string {
  return `sha256:${keyFingerprint(secret)}`;
}

/** "2 min 5 s", "3 h 10 min", "4 days": for ages and lags. */
export function describeDuration(ms: number): string {
  const seconds = Math.max(0, Math.round(ms / 1000));
  if (seconds < 60) return `${seconds} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return seconds % 60 ? `${minutes} min ${seconds % 60} s` : `${minutes} min`;
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return minutes % 60 ? `${hours} h ${minutes % 60} min` : `${hours} h`;
  return `${Math.floor(hours / 24)} days`;
}
