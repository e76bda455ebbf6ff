import { describe, expect, it } from '@jest/globals';
import { DEFAULT_WEBHOOK_DELIVERY_OPTIONS } from './webhook-delivery.options.js';
import { WebhookJitter, WebhookRetryPolicy } from './webhook-retry.policy.js';

class FixedJitter extends WebhookJitter {
  constructor(public value: number) {
    super();
  }
  next(): number {
    return this.value;
  }
}

const HOUR_MS = 60 * 60_000;
const createdAt = new Date('2026-11-27T00:00:00.000Z');

function delayAfter(failures: number, jitter: number, now = createdAt): number | null {
  const next = new WebhookRetryPolicy(DEFAULT_WEBHOOK_DELIVERY_OPTIONS, new FixedJitter(jitter)).nextAttemptAt(failures, createdAt, now);
  return next && next.getTime() - now.getTime();
}

describe('WebhookRetryPolicy', () => {
  it('doubles the ceiling with each failure, from 10 seconds', () => {
    expect([1, 2, 3, 4, 5].map((failures) => delayAfter(failures, 0.5))).toEqual([5_000, 10_000, 20_000, 40_000, 80_000]);
  });

  it('draws the whole delay at random below the ceiling (full jitter)', () => {
    expect(delayAfter(3, 0)).toBe(0);
    expect(delayAfter(3, 0.25)).toBe(10_000);
    expect(delayAfter(3, 0.999_999)).toBe(39_999);
  });

  it('never waits more than an hour, however many failures', () => {
    expect(delayAfter(12, 0.999_999)).toBe(HOUR_MS - 4);
    expect(delayAfter(500, 0.999_999)).toBe(HOUR_MS - 4);
  });

  it('gives up when the next attempt would fall three days after the event', () => {
    const policy = new WebhookRetryPolicy(DEFAULT_WEBHOOK_DELIVERY_OPTIONS, new FixedJitter(0.5));
    expect(policy.nextAttemptAt(80, createdAt, new Date(createdAt.getTime() + 71 * HOUR_MS))).not.toBeNull();
    expect(policy.nextAttemptAt(80, createdAt, new Date(createdAt.getTime() + 72 * HOUR_MS - 1_000))).toBeNull();
    expect(policy.expired(createdAt, new Date(createdAt.getTime() + 72 * HOUR_MS - 1))).toBe(false);
    expect(policy.expired(createdAt, new Date(createdAt.getTime() + 72 * HOUR_MS))).toBe(true);
  });
});
