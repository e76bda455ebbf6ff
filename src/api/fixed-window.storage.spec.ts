import { describe, expect, it } from '@jest/globals';
import type { Clock } from '../common/clock.js';
import { FixedWindowThrottlerStorage } from './fixed-window.storage.js';

describe('FixedWindowThrottlerStorage', () => {
  let now = 0;
  const clock: Clock = { now: () => new Date(now) };

  it('counts hits per key within a window and blocks past the limit until the window ends', async () => {
    now = 1_000_000;
    const storage = new FixedWindowThrottlerStorage(clock);
    expect(await storage.increment('k1', 60_000, 2)).toEqual({ totalHits: 1, timeToExpire: 60, isBlocked: false, timeToBlockExpire: 0 });
    now += 15_000;
    expect(await storage.increment('k1', 60_000, 2)).toMatchObject({ totalHits: 2, isBlocked: false });
    expect(await storage.increment('k1', 60_000, 2)).toEqual({ totalHits: 3, timeToExpire: 45, isBlocked: true, timeToBlockExpire: 45 });
    expect(await storage.increment('k2', 60_000, 2)).toMatchObject({ totalHits: 1, isBlocked: false });
    now += 44_500;
    expect(await storage.increment('k1', 60_000, 2)).toMatchObject({ isBlocked: true, timeToBlockExpire: 1 });
    now += 500;
    expect(await storage.increment('k1', 60_000, 2)).toEqual({ totalHits: 1, timeToExpire: 60, isBlocked: false, timeToBlockExpire: 0 });
  });
});
