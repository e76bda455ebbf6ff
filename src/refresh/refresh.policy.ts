import { DEFAULT_ATLASSIAN_TIMEOUT_MS } from '../atlassian/atlassian.client.js';
import { AtlassianError } from '../atlassian/atlassian.errors.js';

const SECOND = 1_000;
const MINUTE = 60 * SECOND;
const DAY = 24 * 60 * MINUTE;

/**
 * The timing rules of refreshing, in one place. They follow from Atlassian's rotation facts (ATLASSIAN.md):
 * a rotated refresh token keeps working for a 10-minute leeway, and a refresh token dies after 90 days unused.
 */
export const REFRESH_POLICY = {
  /** Atlassian's reuse leeway: the previous refresh token still works this long after a rotation. */
  reuseLeewayMs: 10 * MINUTE,
  /**
   * How long a claim is exclusive. Much shorter than the leeway, so a refresh whose answer was lost (crash) is
   * claimed again while its refresh token still works; longer than a token call may take.
   */
  leaseMs: 90 * SECOND,
  /** A claimed refresh token is presented only while this much of the lease is left: the call ends before the lease. */
  minLeaseLeftMs: DEFAULT_ATLASSIAN_TIMEOUT_MS + 15 * SECOND,
  /** A retry after an answer that may have been lost (timeout, network) happens this soon after the first attempt. */
  lostAnswerRetryWithinMs: 5 * MINUTE,
  /** Idle connections are refreshed when their refresh token is this old, well before the 90-day inactivity expiry. */
  keepAliveMs: 30 * DAY,
  backoffBaseMs: 10 * SECOND,
  backoffCapMs: 5 * MINUTE,
  minRetryMs: 1 * SECOND,
  /** The soonest a successful refresh is followed by the next one. */
  minRefreshSpacingMs: 30 * SECOND,
  /** A Retry-After beyond this is taken as this (a misconfigured proxy must not park a connection for days). */
  maxRetryAfterMs: 60 * MINUTE,
  /** How long a connection whose refresh token this replica cannot decrypt waits before any replica claims it again. */
  undecryptableRetryMs: 1 * MINUTE,
  /** How long a replica stops refreshing after Atlassian refused the client credentials. */
  credentialsRejectedPauseMs: 5 * MINUTE,
  /** How long an on-demand request waits for another worker's refresh of the same connection. */
  onDemandMaxWaitMs: 20 * SECOND,
  onDemandFirstPollMs: 25,
  onDemandMaxPollMs: 500,
  /** How long shutdown waits for in-flight refreshes before leaving them to lease expiry. */
  shutdownGraceMs: 20 * SECOND,
} as const;

/**
 * When a freshly refreshed connection is next due: `lead` before the access token expires, or the keep-alive time
 * of its refresh token if that is sooner. If that time has already passed (a token living shorter than the lead, or
 * a refresh token Atlassian did not rotate, whose keep-alive stays overdue), refreshing again at once would not
 * help: then halfway to the expiry, and never sooner than `minRefreshSpacingMs`.
 */
export function nextRefreshAt(input: {
  readonly now: Date;
  readonly accessTokenExpiresAt: Date;
  readonly refreshTokenIssuedAt: Date | null;
  readonly leadSeconds: number;
}): Date {
  const now = input.now.getTime();
  const expiresAt = input.accessTokenExpiresAt.getTime();
  const beforeExpiry = expiresAt - input.leadSeconds * SECOND;
  const keepAlive = input.refreshTokenIssuedAt ? input.refreshTokenIssuedAt.getTime() + REFRESH_POLICY.keepAliveMs : Infinity;
  const due = Math.min(beforeExpiry, keepAlive);
  if (due > now) return new Date(due);
  return new Date(now + Math.max((expiresAt - now) / 2, REFRESH_POLICY.minRefreshSpacingMs));
}

/**
 * When to try again after a transient failure: exponential backoff with full jitter, never sooner than a
 * Retry-After. After an answer that may have been lost, the retry comes soon enough for the old refresh token to
 * still be inside Atlassian's leeway.
 */
export function retryAt(input: {
  readonly now: Date;
  /** Including this one. */
  readonly consecutiveFailures: number;
  readonly random: number;
  readonly retryAfterMs?: number;
  /** Set when the refresh token may have been rotated without us storing the answer. */
  readonly unansweredSince: Date | null;
}): Date {
  const now = input.now.getTime();
  const exponent = Math.min(Math.max(input.consecutiveFailures - 1, 0), 30);
  let delay = input.random * Math.min(REFRESH_POLICY.backoffCapMs, REFRESH_POLICY.backoffBaseMs * 2 ** exponent);
  if (input.retryAfterMs !== undefined) delay = Math.max(delay, Math.min(input.retryAfterMs, REFRESH_POLICY.maxRetryAfterMs));
  if (input.unansweredSince) {
    const deadline = input.unansweredSince.getTime() + REFRESH_POLICY.lostAnswerRetryWithinMs - now;
    if (deadline > 0) delay = Math.min(delay, deadline);
  }
  return new Date(now + Math.max(delay, REFRESH_POLICY.minRetryMs));
}

/**
 * True when Atlassian may have rotated the refresh token even though we hold no answer: the call timed out, the
 * connection broke, the answer was unreadable, or a gateway failed (500, 502, 504) possibly after the work was done.
 * Only 429 and 503 say plainly "not now" and leave the refresh token untouched.
 */
export function answerMayBeLost(error: unknown): boolean {
  if (!(error instanceof AtlassianError)) return true;
  if (error.kind === 'rate_limited') return false;
  if (error.kind === 'unavailable') return error.details.status !== 503;
  return error.kind === 'timeout' || error.kind === 'network' || error.kind === 'bad_response';
}
