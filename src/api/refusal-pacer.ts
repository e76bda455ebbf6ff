import { setTimeout as delay } from 'node:timers/promises';
import { Injectable, Logger } from '@nestjs/common';
import { Clock } from '../common/clock.js';

/** Refusals per second on one replica below which every refusal is answered at once. */
export const FLOOD_REFUSALS_PER_SECOND = 100;
/** Beyond it, a refusal is answered after a pause of 0.5–1.5 s, spread evenly so the answers do not come in bursts. */
export const PACE_MIN_MS = 500;
export const PACE_SPREAD_MS = 1_000;
/** At most this many refusals wait at once; more are answered at once, so a flood cannot pile up waiting requests. */
export const MAX_PACED = 1_000;

const WINDOW_MS = 1_000;
/** The fractional part of the golden ratio: i·φ mod 1 spreads consecutive refusals evenly over the pause's range. */
const GOLDEN_FRACTION = 0.6180339887498949;

/**
 * Slows down floods of requests without a valid API key. A client that retries as soon as it is refused (a backend
 * deployed with a wrong key, or a flood like `autocannon -c 500`) sends as many requests as the replica can refuse,
 * and everything else the replica serves, liveness included, queues behind them. Past FLOOD_REFUSALS_PER_SECOND, each
 * refusal waits about a second before it is answered, which holds such a client to one request per connection per
 * second. A caller with a valid key is never paced, and a handful of refusals never is.
 */
@Injectable()
export class RefusalPacer {
  private readonly logger = new Logger(RefusalPacer.name);
  private windowStartedAt = Number.NEGATIVE_INFINITY;
  private refusedInWindow = 0;
  private pacedBefore = false;
  private pacedInWindow = false;
  private waiting = 0;

  constructor(private readonly clock: Clock) {}

  /** Answers the refusal `error`: rejects with it, after a pause when refusals flood in. */
  async refuse(error: unknown): Promise<never> {
    const pauseMs = this.pauseFor();
    if (pauseMs > 0) {
      this.waiting += 1;
      try {
        await this.wait(pauseMs);
      } finally {
        this.waiting -= 1;
      }
    }
    throw error;
  }

  /** The pause itself: real time (tests hold it as long as they need). */
  protected wait(ms: number): Promise<void> {
    return delay(ms);
  }

  /** How long the refusal arriving now waits before it is answered: 0 unless refusals flood in. */
  pauseFor(): number {
    const now = this.clock.now().getTime();
    if (now - this.windowStartedAt >= WINDOW_MS) {
      this.windowStartedAt = now;
      this.pacedBefore = this.pacedInWindow;
      this.pacedInWindow = false;
      this.refusedInWindow = 0;
    }
    this.refusedInWindow += 1;
    if (this.refusedInWindow <= FLOOD_REFUSALS_PER_SECOND || this.waiting >= MAX_PACED) return 0;
    if (!this.pacedInWindow && !this.pacedBefore) {
      this.logger.warn(
        `More than ${FLOOD_REFUSALS_PER_SECOND} requests a second without a valid API key: refusing them after a pause of about a second`,
      );
    }
    this.pacedInWindow = true;
    return PACE_MIN_MS + Math.floor(((this.refusedInWindow * GOLDEN_FRACTION) % 1) * PACE_SPREAD_MS);
  }
}
