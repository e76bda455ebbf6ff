import type { PauseScope } from './pause-scopes.js';

export interface Pause {
  readonly scope: PauseScope;
  /** Atlassian's `RateLimit-Reason`, or null when its 429 named none. */
  readonly reason: string | null;
  readonly until: Date;
}

/**
 * The pauses this replica knows of, in memory: what every call is checked against. Filled by this replica's own 429s
 * at once and by every replica's, read back from the shared table, a moment later.
 */
export class PauseBook {
  private pauses = new Map<string, Pause>();

  /** Keeps the later end when the scope is already paused. */
  add(pause: Pause): void {
    const known = this.pauses.get(pause.scope.key);
    if (!known || known.until < pause.until) this.pauses.set(pause.scope.key, pause);
  }

  /**
   * Replaces what was read from the shared table with `shared`, keeping this replica's own pauses that are not there
   * (yet: their write may still be under way, or have failed).
   */
  replace(shared: readonly Pause[], nowMs: number): void {
    const previous = this.pauses;
    this.pauses = new Map();
    for (const pause of shared) this.add(pause);
    for (const pause of previous.values()) if (pause.until.getTime() > nowMs) this.add(pause);
  }

  /** Of the pauses holding any of these scopes, the one that ends last. */
  longest(scopes: readonly PauseScope[], nowMs: number): Pause | undefined {
    let longest: Pause | undefined;
    for (const scope of scopes) {
      const pause = this.pauses.get(scope.key);
      if (pause && pause.until.getTime() > nowMs && (!longest || pause.until > longest.until)) longest = pause;
    }
    return longest;
  }

  active(nowMs: number): Pause[] {
    return [...this.pauses.values()].filter((pause) => pause.until.getTime() > nowMs);
  }
}
