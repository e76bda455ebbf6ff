import type { IncomingMessage, ServerResponse } from 'node:http';
import { Logger } from '@nestjs/common';
import type { LevelWithSilent } from 'pino';

/** How long the refusals after a logged one are counted before their count is logged. */
export const REFUSAL_WINDOW_MS = 10_000;

/**
 * A request refused before any work: no valid API key (401), over its key's limit (429), or no route at that path
 * (404 with no route matched). A flood of them must not cost a log line each.
 */
export function isRefusal(req: IncomingMessage & { route?: unknown }, res: ServerResponse): boolean {
  return res.statusCode === 401 || res.statusCode === 429 || (res.statusCode === 404 && req.route === undefined);
}

type LogLevelOf = (req: IncomingMessage, res: ServerResponse, error?: Error) => LevelWithSilent;

/**
 * pino-http's `customLogLevel` with refusals sampled (see RefusalLog): 'silent' for a refusal that is only counted,
 * `level`'s answer otherwise. One RefusalLog per call, so per application.
 */
export function sampleRefusals(level: LogLevelOf, refusals = new RefusalLog()): LogLevelOf {
  return (req, res, error) => (!error && isRefusal(req, res) && !refusals.admit(res.statusCode) ? 'silent' : level(req, res, error));
}

export type Schedule = (run: () => void, ms: number) => void;

const unrefTimeout: Schedule = (run, ms) => setTimeout(run, ms).unref();

/**
 * Samples the request log lines of refusals: the first refusal after a quiet spell is logged as any request is, with
 * its request id and path; the ones in the REFUSAL_WINDOW_MS after it are only counted, and their count is logged in
 * one line when the window closes. A misconfigured client's first refusal shows in full, and a flood costs a line per
 * window instead of one per request.
 */
export class RefusalLog {
  private readonly logger = new Logger(RefusalLog.name);
  private windowOpen = false;
  private readonly unlogged = new Map<number, number>();

  constructor(private readonly schedule: Schedule = unrefTimeout) {}

  /** Whether this refusal gets its own log line; if not, it is counted for the window's summary. */
  admit(status: number): boolean {
    if (!this.windowOpen) {
      this.windowOpen = true;
      this.schedule(() => this.close(), REFUSAL_WINDOW_MS);
      return true;
    }
    this.unlogged.set(status, (this.unlogged.get(status) ?? 0) + 1);
    return false;
  }

  private close(): void {
    this.windowOpen = false;
    if (this.unlogged.size === 0) return;
    const counts = [...this.unlogged].sort(([a], [b]) => a - b);
    const total = counts.reduce((sum, [, count]) => sum + count, 0);
    this.unlogged.clear();
    this.logger.warn(
      `${total} more requests were refused in the last ${REFUSAL_WINDOW_MS / 1000} s without a log line each ` +
        `(${counts.map(([status, count]) => `${count} × ${status}`).join(', ')})`,
    );
  }
}
