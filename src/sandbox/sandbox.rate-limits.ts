import type { RateLimitReason } from '../atlassian/atlassian.types.js';

/** Third-party summaries give tier 1's pool as 65,000 points an hour for the whole app. */
export const DEFAULT_HOURLY_QUOTA = 65_000;
const HOUR_MS = 3_600_000;
/** Atlassian adds `X-RateLimit-NearLimit: true` when less than a fifth of a budget is left. */
const NEAR_LIMIT_SHARE = 0.2;
const POLICY = '"global-app-quota"';

export interface QuotaReading {
  /** Whether this call fits in the hour's quota. */
  readonly allowed: boolean;
  readonly quota: number;
  readonly remaining: number;
  readonly resetAtMs: number;
}

/**
 * Jira's app-wide hourly points pool (tier 1: one pool for all tenants), simplified to one point per product call
 * (Atlassian charges a read 1 point plus 1 per object it returns). The hour is the clock hour; when it is spent,
 * every product call is refused until the next one, as Atlassian does.
 */
export class HourlyQuota {
  private hour = -1;
  private used = 0;

  /** Spends a point for a call, if one is left this hour. */
  take(nowMs: number, quota: number): QuotaReading {
    this.roll(nowMs);
    const allowed = this.used < quota;
    if (allowed) this.used += 1;
    return this.reading(nowMs, quota, allowed);
  }

  /** Where the hour stands, without spending. */
  peek(nowMs: number, quota: number): QuotaReading {
    this.roll(nowMs);
    return this.reading(nowMs, quota, this.used < quota);
  }

  private roll(nowMs: number): void {
    const hour = Math.floor(nowMs / HOUR_MS);
    if (hour !== this.hour) {
      this.hour = hour;
      this.used = 0;
    }
  }

  private reading(nowMs: number, quota: number, allowed: boolean): QuotaReading {
    return { allowed, quota, remaining: Math.max(0, quota - this.used), resetAtMs: (Math.floor(nowMs / HOUR_MS) + 1) * HOUR_MS };
  }
}

/**
 * The rate-limit headers a Jira answer carries, with Atlassian's names: `X-RateLimit-Limit`, `-Remaining`, `-Reset`
 * (ISO 8601 to the minute, `yyyy-MM-ddTHH:mmZ`, as Atlassian documents it), `X-RateLimit-NearLimit` when less than a fifth is
 * left, and the shadow set in the form seen on Atlassian's answers: `Beta-RateLimit-Policy: "<policy>";q=<quota>;w=<window
 * seconds>` and `Beta-RateLimit: "<policy>";r=<remaining>;t=<seconds to reset>`. Here one meter, the hourly quota, feeds both sets.
 */
export function quotaHeaders(reading: QuotaReading, nowMs: number): Record<string, string> {
  const headers: Record<string, string> = {
    'X-RateLimit-Limit': String(reading.quota),
    'X-RateLimit-Remaining': String(reading.remaining),
    'X-RateLimit-Reset': resetTime(reading.resetAtMs),
    'Beta-RateLimit-Policy': `${POLICY};q=${reading.quota};w=${HOUR_MS / 1000}`,
    'Beta-RateLimit': `${POLICY};r=${reading.remaining};t=${Math.ceil((reading.resetAtMs - nowMs) / 1000)}`,
  };
  if (reading.remaining < reading.quota * NEAR_LIMIT_SHARE) headers['X-RateLimit-NearLimit'] = 'true';
  return headers;
}

/** What a 429 carries: `Retry-After` in seconds, `RateLimit-Reason` when there is one, and when the limit resets. */
export function rateLimitedHeaders(retryAfterSeconds: number, reason: RateLimitReason | undefined, nowMs: number): Record<string, string> {
  return {
    'Retry-After': String(retryAfterSeconds),
    ...(reason ? { 'RateLimit-Reason': reason } : {}),
    'X-RateLimit-Reset': resetTime(nowMs + retryAfterSeconds * 1000),
  };
}

/** To the minute, rounded up: a client that waits for it never comes back early. */
function resetTime(atMs: number): string {
  return `${new Date(Math.ceil(atMs / 60_000) * 60_000).toISOString().slice(0, 16)}Z`;
}
