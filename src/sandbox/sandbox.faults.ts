import type { RateLimitReason } from '../atlassian/atlassian.types.js';
import { rateLimitedHeaders } from './sandbox.rate-limits.js';
import { apiError, oauthError, type SandboxResponse } from './sandbox.responses.js';

export type FaultEndpoint = 'token' | 'api';
export const FAULT_STATUSES = [429, 500, 502, 503, 504] as const;
export type FaultStatus = (typeof FAULT_STATUSES)[number];

/**
 * The next `count` calls to `endpoint` misbehave, or every call for `seconds` (an outage of that length). With a
 * `status` they answer it (after `timeoutMs`, if set) without doing any work. With only `timeoutMs` they do the work
 * and then hold the answer back, which is how a client loses a refresh that Atlassian did perform.
 */
export interface FaultPlan {
  /** Exactly one of `count` and `seconds`. */
  count?: number;
  seconds?: number;
  endpoint: FaultEndpoint | 'all';
  status?: FaultStatus;
  retryAfterSeconds?: number;
  timeoutMs?: number;
  /** With status 429 on the API: Atlassian's `RateLimit-Reason` to answer (none by default, as some 429s come). */
  rateLimitReason?: RateLimitReason;
  /** On the API: only product calls whose path under the site starts with this, e.g. `/rest/api/3/issue`. */
  productPath?: string;
}

export type Fault = Omit<FaultPlan, 'count' | 'seconds'>;

const REASONS: Record<FaultStatus, { error: string; message: string }> = {
  429: { error: 'too_many_requests', message: 'Rate limit exceeded' },
  500: { error: 'server_error', message: 'Internal Server Error' },
  502: { error: 'server_error', message: 'Bad Gateway' },
  503: { error: 'temporarily_unavailable', message: 'Service Unavailable' },
  504: { error: 'server_error', message: 'Gateway Timeout' },
};

interface QueuedPlan {
  readonly fault: Fault;
  /** Calls left, for a plan by count. */
  count?: number;
  readonly durationMs?: number;
  /** For a plan by time: when it began to apply, which is when the plan before it ended. */
  startedAt?: number;
}

/**
 * Plans are served in the order they were added, so a test can script "two 503s, then a 429", or "503s for a minute,
 * then 429s for 20 s". A plan by time starts when the one before it ends (at once, if none is left) and ends on time,
 * whether or not calls came meanwhile.
 */
export class FaultQueue {
  private plans: QueuedPlan[] = [];

  add(plan: FaultPlan, nowMs: number): void {
    const { count, seconds, ...fault } = plan;
    this.expire(nowMs);
    const queued: QueuedPlan = seconds === undefined ? { fault, count } : { fault, durationMs: seconds * 1000 };
    if (this.plans.length === 0 && queued.durationMs !== undefined) queued.startedAt = nowMs;
    this.plans.push(queued);
  }

  /** The fault for this call, if one is planned: `productPath` is the path under the site of a product call. */
  take(endpoint: FaultEndpoint, nowMs: number, productPath?: string): Fault | undefined {
    this.expire(nowMs);
    const index = this.plans.findIndex(
      (plan) =>
        (plan.fault.endpoint === 'all' || plan.fault.endpoint === endpoint) &&
        (plan.fault.productPath === undefined || productPath?.startsWith(plan.fault.productPath) === true),
    );
    if (index < 0) return undefined;
    const plan = this.plans[index];
    if (plan.count !== undefined && (plan.count -= 1) <= 0) this.remove(index, nowMs);
    return { ...plan.fault };
  }

  /** Calls still to be answered with a fault by count, and one for each plan by time that has not ended. */
  pending(nowMs: number): number {
    this.expire(nowMs);
    return this.plans.reduce((sum, plan) => sum + (plan.count ?? 1), 0);
  }

  /** Plans by time at the head whose time is over go, each handing its end to the next as that one's start. */
  private expire(nowMs: number): void {
    for (let head = this.plans[0]; head?.durationMs !== undefined; head = this.plans[0]) {
      const endsAt = (head.startedAt ?? nowMs) + head.durationMs;
      if (endsAt > nowMs) return;
      this.remove(0, endsAt);
    }
  }

  private remove(index: number, endedAt: number): void {
    this.plans.splice(index, 1);
    const next = this.plans[0];
    if (index === 0 && next?.durationMs !== undefined && next.startedAt === undefined) next.startedAt = endedAt;
  }
}

/**
 * A 429 of the API carries Atlassian's rate-limit headers (Retry-After, RateLimit-Reason when the plan names one,
 * X-RateLimit-Reset); the token endpoint's, and other statuses given a delay, just Retry-After.
 */
export function faultResponse(endpoint: FaultEndpoint, fault: Fault & { status: FaultStatus }, nowMs: number): SandboxResponse {
  const { status, retryAfterSeconds } = fault;
  const reason = REASONS[status];
  const response = endpoint === 'token' ? oauthError(status, reason.error, reason.message) : apiError(status, reason.message);
  if (endpoint === 'api' && status === 429 && fault.rateLimitReason !== undefined) {
    return { ...response, headers: rateLimitedHeaders(retryAfterSeconds ?? 1, fault.rateLimitReason, nowMs) };
  }
  const sendRetryAfter = status === 429 || retryAfterSeconds !== undefined;
  return sendRetryAfter ? { ...response, headers: { 'Retry-After': String(retryAfterSeconds ?? 1) } } : response;
}
