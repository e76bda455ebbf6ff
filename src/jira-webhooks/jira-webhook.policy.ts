import type { JiraWebhookSubscription } from '../config/app-config.js';
import { REFRESH_POLICY, retryAt } from '../refresh/refresh.policy.js';

const SECOND = 1_000;

/** The timing rules of keeping Jira webhooks alive, beside the refresh rules whose lease and backoff they share. */
export const JIRA_WEBHOOK_POLICY = {
  /** A claim is exclusive this long: a connection's calls to Jira (list, register, extend, delete per site) end well before. */
  leaseMs: 5 * 60 * SECOND,
  /** The shortest lease, for an extension lead of minutes (tests): a pass of several sites' calls still fits in it. */
  minLeaseMs: 30 * SECOND,
  /** The soonest a connection is looked at again after a pass that went well. */
  minSpacingMs: 1 * SECOND,
  /** A PUT or DELETE waits this long for another worker's pass over the same connection before answering 503. */
  claimWaitMs: 20 * SECOND,
  claimPollMs: 100,
  /** Connections claimed per pass of the daemon, and how many of them are worked on at once. */
  batch: 32,
  concurrency: 8,
  /** Deliveries remembered to drop Jira's retries. */
  deliveryMemoryMs: 7 * 24 * 3600 * SECOND,
} as const;

/**
 * How long a pass's lease lasts: five minutes, but at most a third of the extension lead, so a worker that dies
 * mid-extension leaves its connection to another long before the registrations it was extending expire.
 */
export function leaseMsFor(extendBeforeMs: number): number {
  return Math.min(JIRA_WEBHOOK_POLICY.leaseMs, Math.max(JIRA_WEBHOOK_POLICY.minLeaseMs, Math.floor(extendBeforeMs / 3)));
}

/** Two subscriptions are the same registration when their events, JQL and field filter are (order aside). */
export function subscriptionKey(subscription: JiraWebhookSubscription): string {
  const sorted = (values: readonly string[] | undefined) => [...new Set(values ?? [])].sort();
  return JSON.stringify([sorted(subscription.events), subscription.jqlFilter.trim(), sorted(subscription.fieldIdsFilter)]);
}

/** Whether a registration expiring at `expiresAt` is to be extended now: less than `extendBeforeMs` remains. */
export function extensionDue(expiresAt: Date | null, now: Date, extendBeforeMs: number): boolean {
  return expiresAt === null || expiresAt.getTime() - now.getTime() < extendBeforeMs;
}

/**
 * When a registration expiring at `expiresAt` is next extended: `extendBeforeMs` before it. When that time has passed
 * (a lifetime shorter than the lead, as a test sandbox has), halfway to the expiry, so it is extended long before it.
 */
export function extensionAt(expiresAt: Date, now: Date, extendBeforeMs: number): Date {
  const due = expiresAt.getTime() - extendBeforeMs;
  if (due > now.getTime()) return new Date(due);
  return new Date(now.getTime() + Math.max((expiresAt.getTime() - now.getTime()) / 2, JIRA_WEBHOOK_POLICY.minSpacingMs));
}

/**
 * When the daemon next looks at a connection: its next reconciliation, or the soonest extension of its registrations,
 * whichever comes first; after a failure, the refresh rules' backoff with jitter and Retry-After, unless an extension
 * is due sooner than that.
 */
export function nextPassAt(input: {
  readonly now: Date;
  readonly expiries: readonly Date[];
  readonly extendBeforeMs: number;
  readonly reconcileIntervalMs: number;
  readonly failure?: { readonly consecutiveFailures: number; readonly random: number; readonly retryAfterMs?: number };
}): Date {
  const { now } = input;
  let next = now.getTime() + input.reconcileIntervalMs;
  for (const expiresAt of input.expiries) next = Math.min(next, extensionAt(expiresAt, now, input.extendBeforeMs).getTime());
  if (input.failure) {
    const retry = retryAt({ now, ...input.failure, unansweredSince: null }).getTime();
    next = Math.min(next, Math.min(retry, now.getTime() + REFRESH_POLICY.backoffCapMs));
  }
  return new Date(Math.max(next, now.getTime() + JIRA_WEBHOOK_POLICY.minSpacingMs));
}
