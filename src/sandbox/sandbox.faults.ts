import { apiError, oauthError, type SandboxResponse } from './sandbox.responses.js';

export type FaultEndpoint = 'token' | 'api';
export const FAULT_STATUSES = [429, 500, 502, 503, 504] as const;
export type FaultStatus = (typeof FAULT_STATUSES)[number];

/**
 * The next `count` calls to `endpoint` misbehave, or with `seconds` every call for that long from the first one it
 * answers, however many come (an outage by time, which no burst of calls can outrun). With a `status` they answer
 * it (after `timeoutMs`, if set) without doing any work. With only `timeoutMs` they do the work and then hold the
 * answer back, which is how a client loses a refresh that Atlassian did perform.
 */
export interface FaultPlan {
  count: number;
  seconds?: number;
  endpoint: FaultEndpoint | 'all';
  status?: FaultStatus;
  retryAfterSeconds?: number;
  timeoutMs?: number;
}

export type Fault = Omit<FaultPlan, 'count' | 'seconds'>;

const REASONS: Record<FaultStatus, { error: string; message: string }> = {
  429: { error: 'too_many_requests', message: 'Rate limit exceeded' },
  500: { error: 'server_error', message: 'Internal Server Error' },
  502: { error: 'server_error', message: 'Bad Gateway' },
  503: { error: 'temporarily_unavailable', message: 'Service Unavailable' },
  504: { error: 'server_error', message: 'Gateway Timeout' },
};

/** Plans are served in the order they were added, so a test can script "two 503s, then a 429". */
export class FaultQueue {
  private plans: (FaultPlan & { until?: number })[] = [];

  constructor(private readonly now: () => number) {}

  add(plan: FaultPlan): void {
    this.plans.push({ ...plan });
  }

  take(endpoint: FaultEndpoint): Fault | undefined {
    this.dropExpired();
    const index = this.plans.findIndex((plan) => plan.endpoint === 'all' || plan.endpoint === endpoint);
    if (index < 0) return undefined;
    const plan = this.plans[index];
    const { count, seconds, until: _, ...fault } = plan;
    if (seconds !== undefined) {
      plan.until ??= this.now() + seconds * 1000;
      return fault;
    }
    if (count <= 1) this.plans.splice(index, 1);
    else this.plans[index].count = count - 1;
    return fault;
  }

  /** Faulty answers still to come: a timed plan counts as one while it lasts. */
  pending(): number {
    this.dropExpired();
    return this.plans.reduce((sum, plan) => sum + (plan.seconds === undefined ? plan.count : 1), 0);
  }

  private dropExpired(): void {
    const now = this.now();
    this.plans = this.plans.filter((plan) => plan.until === undefined || plan.until > now);
  }
}

export function faultResponse(endpoint: FaultEndpoint, status: FaultStatus, retryAfterSeconds?: number): SandboxResponse {
  const reason = REASONS[status];
  const response = endpoint === 'token' ? oauthError(status, reason.error, reason.message) : apiError(status, reason.message);
  const sendRetryAfter = status === 429 || retryAfterSeconds !== undefined;
  return sendRetryAfter ? { ...response, headers: { 'Retry-After': String(retryAfterSeconds ?? 1) } } : response;
}
