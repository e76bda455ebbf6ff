import type { ThrottlerStorage } from '@nestjs/throttler';
import type { Clock } from '../common/clock.js';

interface Window {
  readonly startsAt: number;
  hits: number;
}

/**
 * Counts requests per key in fixed windows, in constant time and memory per key. The throttler's default storage keeps
 * one timestamp per request and filters them on every request, which at thousands of requests per second costs
 * more than the request itself. Keys are only ever valid API keys, so the map stays as small as API_KEYS.
 * Runs on the injected clock, so tests move time instead of waiting for a window to end.
 */
export class FixedWindowThrottlerStorage implements ThrottlerStorage {
  private readonly windows = new Map<string, Window>();

  constructor(private readonly clock: Clock) {}

  increment(key: string, ttl: number, limit: number): ReturnType<ThrottlerStorage['increment']> {
    const now = this.clock.now().getTime();
    let window = this.windows.get(key);
    if (!window || now >= window.startsAt + ttl) {
      window = { startsAt: now, hits: 0 };
      this.windows.set(key, window);
    }
    window.hits += 1;
    const secondsLeft = Math.max(1, Math.ceil((window.startsAt + ttl - now) / 1000));
    const isBlocked = window.hits > limit;
    return Promise.resolve({
      totalHits: window.hits,
      timeToExpire: secondsLeft,
      isBlocked,
      timeToBlockExpire: isBlocked ? secondsLeft : 0,
    });
  }
}
