import { describe, expect, it } from '@jest/globals';
import { AtlassianError } from '../atlassian/atlassian.errors.js';
import { answerMayBeLost, nextRefreshAt, REFRESH_POLICY, retryAt } from './refresh.policy.js';

const now = new Date('2026-03-02T09:00:00.000Z');
const at = (ms: number) => new Date(now.getTime() + ms);
const SECOND = 1000;
const DAY = 24 * 3600 * SECOND;

describe('nextRefreshAt', () => {
  it('is the lead before expiry for Atlassian-like tokens', () => {
    expect(nextRefreshAt({ now, accessTokenExpiresAt: at(3600 * SECOND), refreshTokenIssuedAt: now, leadSeconds: 600 })).toEqual(
      at(3000 * SECOND),
    );
  });

  it('is the keep-alive time when that comes first', () => {
    const issued = at(-29 * DAY);
    expect(nextRefreshAt({ now, accessTokenExpiresAt: at(60 * DAY), refreshTokenIssuedAt: issued, leadSeconds: 600 })).toEqual(at(DAY));
  });

  it('is halfway to expiry when both have passed, so short tokens or an unrotated old refresh token cannot loop', () => {
    expect(nextRefreshAt({ now, accessTokenExpiresAt: at(300 * SECOND), refreshTokenIssuedAt: now, leadSeconds: 600 })).toEqual(
      at(150 * SECOND),
    );
    expect(nextRefreshAt({ now, accessTokenExpiresAt: at(3600 * SECOND), refreshTokenIssuedAt: at(-89 * DAY), leadSeconds: 600 })).toEqual(
      at(1800 * SECOND),
    );
    expect(nextRefreshAt({ now, accessTokenExpiresAt: at(2 * SECOND), refreshTokenIssuedAt: now, leadSeconds: 600 })).toEqual(
      at(REFRESH_POLICY.minRefreshSpacingMs),
    );
  });
});

describe('retryAt', () => {
  const base = { now, random: 1, unansweredSince: null };

  it('doubles the ceiling per failure up to the cap, scaled by the random draw (full jitter)', () => {
    const delays = [1, 2, 3, 4, 5, 6, 7, 20].map((n) => retryAt({ ...base, consecutiveFailures: n }).getTime() - now.getTime());
    expect(delays).toEqual([10, 20, 40, 80, 160, 300, 300, 300].map((s) => s * SECOND));
    expect(retryAt({ ...base, consecutiveFailures: 3, random: 0.25 })).toEqual(at(10 * SECOND));
  });

  it('waits at least a second', () => {
    expect(retryAt({ ...base, consecutiveFailures: 1, random: 0 })).toEqual(at(REFRESH_POLICY.minRetryMs));
  });

  it('honours Retry-After, within reason', () => {
    expect(retryAt({ ...base, consecutiveFailures: 1, random: 0.1, retryAfterMs: 90 * SECOND })).toEqual(at(90 * SECOND));
    expect(retryAt({ ...base, consecutiveFailures: 1, retryAfterMs: 7 * DAY })).toEqual(at(REFRESH_POLICY.maxRetryAfterMs));
  });

  it('retries an answer that may be lost while the old refresh token is still inside the leeway', () => {
    const since = at(-4 * 60 * SECOND);
    expect(retryAt({ ...base, consecutiveFailures: 6, unansweredSince: since })).toEqual(at(60 * SECOND));
    expect(retryAt({ ...base, consecutiveFailures: 1, retryAfterMs: 600 * SECOND, unansweredSince: since })).toEqual(at(60 * SECOND));
    // Past the window there is nothing left to win by hurrying.
    expect(retryAt({ ...base, consecutiveFailures: 6, unansweredSince: at(-20 * 60 * SECOND) })).toEqual(at(300 * SECOND));
  });
});

describe('answerMayBeLost', () => {
  it('is false only when Atlassian plainly did not process the refresh', () => {
    const error = (kind: AtlassianError['kind'], status?: number) => new AtlassianError(kind, 'x', { status });
    expect(answerMayBeLost(error('rate_limited', 429))).toBe(false);
    expect(answerMayBeLost(error('unavailable', 503))).toBe(false);
    expect(answerMayBeLost(error('unavailable', 502))).toBe(true);
    expect(answerMayBeLost(error('unavailable', 504))).toBe(true);
    expect(answerMayBeLost(error('timeout'))).toBe(true);
    expect(answerMayBeLost(error('network'))).toBe(true);
    expect(answerMayBeLost(error('bad_response', 200))).toBe(true);
    expect(answerMayBeLost(error('invalid_request', 400))).toBe(false);
    expect(answerMayBeLost(new Error('anything else'))).toBe(true);
  });
});
