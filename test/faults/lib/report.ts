import { errorMessage, eventually, type PollOptions } from './util.js';

/**
 * What one scenario found: the figures it measured and the checks it made. A failed check does not stop the
 * scenario (the next figures still help whoever reads the failure); an exception does.
 */
export class ScenarioReport {
  readonly figures: Array<[string, string | number]> = [];
  readonly failures: string[] = [];
  startedAt = Date.now();
  endedAt: number | null = null;

  constructor(
    readonly id: string,
    readonly title: string,
  ) {}

  log(text: string): void {
    console.log(`[${this.id}] ${text}`);
  }

  figure(name: string, value: string | number): void {
    this.figures.push([name, value]);
    this.log(`  ${name}: ${value}`);
  }

  check(label: string, ok: boolean, detail = ''): boolean {
    if (ok) {
      this.log(`  ok    ${label}`);
    } else {
      this.failures.push(detail ? `${label}: ${detail}` : label);
      this.log(`  FAIL  ${label}${detail ? `: ${detail}` : ''}`);
    }
    return ok;
  }

  /** The figure and the check of a counter that must stay at zero. */
  zero(name: string, value: number): boolean {
    return this.check(`${name} = 0`, value === 0, `was ${value}`);
  }

  /** A check on something that takes a while to become true: polled until it holds or the time is up. */
  async within<T>(label: string, read: () => Promise<T> | T, done: (value: T) => boolean, options: PollOptions): Promise<T | undefined> {
    try {
      const value = await eventually(label, read, done, options);
      this.check(label, true);
      return value;
    } catch (error) {
      this.check(label, false, errorMessage(error));
      return undefined;
    }
  }

  fail(message: string): void {
    this.failures.push(message);
    this.log(`  FAIL  ${message}`);
  }

  finish(): void {
    this.endedAt = Date.now();
  }

  get passed(): boolean {
    return this.failures.length === 0;
  }

  get seconds(): number {
    return Math.round(((this.endedAt ?? Date.now()) - this.startedAt) / 1000);
  }
}
