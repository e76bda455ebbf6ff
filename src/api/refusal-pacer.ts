import { setTimeout as delay } from 'node:timers/promises';
import { Injectable, Logger } from '@nestjs/common';
import type { RequestHandler } from 'express';
import { Clock } from '../common/clock.js';
import { markArrival } from '../common/request-arrival.js';
import type { ApiKeyGuard, KeyedRequest } from './api-key.guard.js';
import { isApiPath } from './api-routes.js';

/** Refusals per second on one replica up to which every refusal is answered at once, in bursts of REFUSAL_BURST at most. */
export const FLOOD_REFUSALS_PER_SECOND = 100;
/**
 * The most refusals answered at once in one burst. A flood's first moment brings one request per connection at once
 * (500 with `autocannon -c 500`); refusing 100 of them through the whole stack holds everything else up for tens of ms.
 */
export const REFUSAL_BURST = 10;
/** Beyond these, a refusal is answered after a pause of 0.5–1.5 s, spread evenly so the answers do not come in bursts. */
export const PACE_MIN_MS = 500;
export const PACE_SPREAD_MS = 1_000;
/** At most this many refusals wait at once; more are answered at once, so a flood cannot pile up waiting requests. */
export const MAX_PACED = 1_000;

/** Pacing that began this long after the last paced refusal is a new flood, and is logged. */
const QUIET_MS = 1_000;
/** The fractional part of the golden ratio: i·φ mod 1 spreads consecutive refusals evenly over the pause's range. */
const GOLDEN_FRACTION = 0.6180339887498949;

/**
 * Slows down floods of requests without a valid API key. A client that retries as soon as it is refused (a backend
 * deployed with a wrong key, or a flood like `autocannon -c 500`) sends as many requests as the replica can refuse,
 * and everything else the replica serves, liveness included, queues behind them. Past FLOOD_REFUSALS_PER_SECOND, each
 * refusal waits about a second before it is answered, which holds such a client to one request per connection per
 * second. A caller with a valid key is never paced, and a handful of refusals never is.
 *
 * The pause comes first, before the request's work (see `paceRequestsWithoutKey`): a flood's requests wait for their
 * turn having cost only the key check, and are then refused as any request is, spread over the next second, so that
 * a flood that opens hundreds of connections at once does not hold everything else up while it is refused.
 */
@Injectable()
export class RefusalPacer {
  private readonly logger = new Logger(RefusalPacer.name);
  /** A token bucket: FLOOD_REFUSALS_PER_SECOND come in a second, up to REFUSAL_BURST; each refusal answered at once takes one. */
  private tokens = REFUSAL_BURST;
  private filledAt = Number.NEGATIVE_INFINITY;
  private lastPacedAt = Number.NEGATIVE_INFINITY;
  private paced = 0;
  private waiting = 0;

  constructor(private readonly clock: Clock) {}

  /**
   * The pause before a request without a valid key is answered: null when it is answered at once, else a promise that
   * settles when the pause is over.
   */
  pace(): Promise<void> | null {
    const pauseMs = this.pauseFor();
    if (pauseMs === 0) return null;
    this.waiting += 1;
    return this.wait(pauseMs).finally(() => {
      this.waiting -= 1;
    });
  }

  /** The pause itself: real time (tests hold it as long as they need). */
  protected wait(ms: number): Promise<void> {
    return delay(ms);
  }

  /** How long the refusal arriving now waits before it is answered: 0 unless refusals flood in. */
  pauseFor(): number {
    const now = this.clock.now().getTime();
    this.tokens = Math.min(REFUSAL_BURST, this.tokens + ((now - this.filledAt) * FLOOD_REFUSALS_PER_SECOND) / 1_000);
    this.filledAt = now;
    if (this.tokens >= 1) {
      this.tokens -= 1;
      return 0;
    }
    if (this.waiting >= MAX_PACED) return 0;
    if (now - this.lastPacedAt >= QUIET_MS) {
      this.logger.warn(
        `More than ${FLOOD_REFUSALS_PER_SECOND} requests a second without a valid API key: refusing them after a pause of about a second`,
      );
    }
    this.lastPacedAt = now;
    this.paced += 1;
    return PACE_MIN_MS + Math.floor(((this.paced * GOLDEN_FRACTION) % 1) * PACE_SPREAD_MS);
  }
}

/**
 * The first of the app's middlewares: a request to the API without a valid key waits out the pacer's pause before
 * anything else is done for it, then goes on to be refused by the guards as any such request is, and timed in the
 * metrics from its arrival. One whose client has gone meanwhile is dropped: there is no one left to answer. A request
 * with a valid key leaves with its key's fingerprint, so the guards do not check the key again.
 */
export function paceRequestsWithoutKey(apiKeys: ApiKeyGuard, pacer: RefusalPacer): RequestHandler {
  return (req, _res, next) => {
    if (!isApiPath(req.path) || apiKeys.refusalOf(req as KeyedRequest) === undefined) return next();
    const pause = pacer.pace();
    if (!pause) return next();
    markArrival(req);
    void pause.then(() => {
      if (!req.socket.destroyed) next();
    });
  };
}
