import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { setTimeout as delay } from 'node:timers/promises';
import { Injectable, Logger } from '@nestjs/common';
import { AtlassianError } from '../atlassian/atlassian.errors.js';
import { Clock } from '../common/clock.js';
import { ConnectionNotFoundError, DomainError, ReauthRequiredError } from '../common/errors.js';
import { AppConfig, JIRA_WEBHOOK_SCOPES, type JiraWebhookSubscription } from '../config/app-config.js';
import { shortId } from '../logging/redact.js';
import { RandomSource } from '../refresh/timing.js';
import { JiraWebhookClient, type ListedWebhook } from './jira-webhook.client.js';
import { extensionDue, JIRA_WEBHOOK_POLICY, leaseMsFor, nextPassAt, subscriptionKey } from './jira-webhook.policy.js';
import type { JiraWebhooksDto, PutJiraWebhooksDto } from './jira-webhooks.dto.js';
import { JiraWebhookMetrics } from './jira-webhooks.metrics.js';
import {
  JiraWebhooksRepository,
  newRegistrationId,
  type PassResult,
  type Registration,
  type SubscriptionsClaim,
  type WebhookConnection,
} from './jira-webhooks.repository.js';

/** Where Jira delivers, under PUBLIC_URL: the one URL the app registers. */
export const JIRA_WEBHOOK_RECEIVER_PATH = '/atlassian/jira-webhooks';
const MAX_ERROR_LENGTH = 500;

interface Wanted {
  readonly subscriptions: readonly JiraWebhookSubscription[];
  readonly cloudIds: readonly string[] | null;
}

/** What one site's registrations come to after a pass: the rows to keep, and what is still to be deleted at Jira. */
interface SitePlan {
  readonly cloudId: string;
  rows: Registration[];
  /** Registered by this pass (to take back if a PUT is refused). */
  readonly created: number[];
  /** Listed at Jira and not wanted. */
  unwanted: readonly ListedWebhook[];
  readonly refused?: string;
  failure?: Failure;
}

interface Failure {
  readonly message: string;
  readonly retryAfterMs?: number;
}

type PassOutcome = { readonly kind: 'done'; readonly result: PassResult } | { readonly kind: 'refused'; readonly reason: string };

export interface WebhookPassReport {
  readonly claimed: number;
  readonly failed: number;
  readonly leaseLost: number;
  readonly deliveriesForgotten: number;
}

/**
 * Jira webhooks kept the way the SaaS backend asked (SPEC "Jira webhooks"): registered on the user's sites as that user,
 * reconciled with what Jira lists, extended before they expire, deleted when no longer wanted. Every pass over a
 * connection runs under its lease (one worker per connection across replicas), and every call to Jira goes through
 * AtlassianApi and so through the rate-limit governor.
 */
@Injectable()
export class JiraWebhooksService {
  private readonly logger = new Logger(JiraWebhooksService.name);
  readonly owner = `${hostname()}/${process.pid}/${randomBytes(3).toString('hex')}`;

  constructor(
    private readonly repository: JiraWebhooksRepository,
    private readonly client: JiraWebhookClient,
    private readonly config: AppConfig,
    private readonly clock: Clock,
    private readonly metrics: JiraWebhookMetrics,
    private readonly random: RandomSource,
  ) {}

  async describe(userId: string): Promise<JiraWebhooksDto> {
    const connection = await this.requireConnection(userId);
    const registrations = await this.repository.registrations(connection.id);
    const paused = connection.status === 'reauth_required';
    return {
      userId,
      webhooks: registrations
        .filter((r) => r.status !== 'removed')
        .map((r) => ({
          cloudId: r.cloudId,
          jiraWebhookId: r.jiraWebhookId,
          events: [...r.events],
          jqlFilter: r.jqlFilter,
          status: paused ? 'paused' : r.status,
          expiresAt: r.expiresAt?.toISOString() ?? null,
          lastDeliveryAt: r.lastDeliveryAt?.toISOString() ?? null,
          lastError: r.lastError,
        })),
    };
  }

  /**
   * Makes the user's registrations what `body` asks, at once: what is missing is registered, what is not wanted any
   * more is deleted. A subscription Jira refuses as invalid is `400 invalid_subscription` and leaves Jira and the stored
   * state as they were; a site failing for another reason leaves its entries `failing`, retried by the daemon.
   */
  async replace(userId: string, body: PutJiraWebhooksDto): Promise<JiraWebhooksDto> {
    const connection = await this.requireConnection(userId);
    if (connection.status === 'reauth_required') throw new ReauthRequiredError(userId);
    const missing = JIRA_WEBHOOK_SCOPES.filter((scope) => !connection.scopes.includes(scope));
    if (missing.length > 0) {
      throw new DomainError(
        'missing_scopes',
        `Registering Jira webhooks needs the scopes ${missing.join(' and ')}, which this user's grant lacks. Add them to ` +
          "ATLASSIAN_SCOPES and to the app's permissions in the developer console, then have the user reconnect.",
      );
    }
    const unknown = (body.cloudIds ?? []).filter((cloudId) => !connection.cloudIds.includes(cloudId));
    if (unknown.length > 0) {
      throw new DomainError('site_not_found', `Not a site of this user: ${unknown.join(', ')}. GET accessible-resources lists them.`);
    }
    const wanted: Wanted = { subscriptions: distinct(body.webhooks.map(normalised)), cloudIds: body.cloudIds ?? null };
    const claim = await this.claimWaiting(connection);
    const outcome = await this.passReleasingOnError(claim, connection, wanted, true);
    if (outcome.kind === 'refused') {
      await this.repository.release(claim, this.clock.now(), this.clock.now());
      throw new DomainError('invalid_subscription', `Jira refused a subscription: ${outcome.reason}`);
    }
    await this.repository.savePass(claim, { ...outcome.result, wanted }, this.clock.now());
    return this.describe(userId);
  }

  /** Deletes the user's registrations at Jira and here. Those Jira could not delete now stay `removed` until it can. */
  async removeAll(userId: string): Promise<void> {
    const connection = await this.requireConnection(userId);
    const wanted: Wanted = { subscriptions: [], cloudIds: null };
    const claim = await this.claimWaiting(connection);
    if (connection.status === 'reauth_required') {
      // Without a working token nothing can be deleted at Jira: they are left to expire there.
      await this.repository.savePass(claim, { registrations: [], dueAt: this.clock.now(), failed: false, wanted }, this.clock.now());
      return;
    }
    const outcome = await this.passReleasingOnError(claim, connection, wanted, false);
    if (outcome.kind === 'done') await this.repository.savePass(claim, { ...outcome.result, wanted }, this.clock.now());
  }

  /**
   * Before a connection is forgotten: its registrations are deleted at Jira while its token still works. Best effort:
   * a failure is logged and the connection is forgotten all the same (Jira lets the rest expire).
   */
  async deleteAtJiraBeforeForgetting(userId: string): Promise<void> {
    const connection = await this.repository.findConnection(userId);
    if (!connection || connection.status === 'reauth_required') return;
    if ((await this.repository.registrations(connection.id)).length === 0) return;
    try {
      const claim = await this.claimWaiting(connection);
      const outcome = await this.passReleasingOnError(claim, connection, { subscriptions: [], cloudIds: null }, false);
      const left = outcome.kind === 'done' ? outcome.result.registrations.length : 0;
      if (left > 0) this.logger.warn(`Connection ${shortId(connection.id)} forgotten with ${left} Jira webhooks Jira could not delete now`);
    } catch (error) {
      this.logger.warn(`Jira webhooks of connection ${shortId(connection.id)} could not be deleted first: ${(error as Error).message}`);
    }
  }

  /** The daemon's pass: the connections due (to reconcile, extend or retry), each under its lease; old deliveries forgotten. */
  async runDuePasses(): Promise<WebhookPassReport> {
    const now = this.clock.now();
    const claims = await this.repository.claimDue(this.lease(now), JIRA_WEBHOOK_POLICY.batch);
    let failed = 0;
    let leaseLost = 0;
    const queue = [...claims];
    const worker = async () => {
      for (let claim = queue.shift(); claim; claim = queue.shift()) {
        const outcome = await this.daemonPass(claim);
        if (outcome === 'failed') failed += 1;
        if (outcome === 'lease_lost') leaseLost += 1;
      }
    };
    await Promise.all(Array.from({ length: Math.min(JIRA_WEBHOOK_POLICY.concurrency, claims.length) }, worker));
    const deliveriesForgotten = await this.repository.purgeDeliveries(
      new Date(now.getTime() - JIRA_WEBHOOK_POLICY.deliveryMemoryMs),
      10_000,
    );
    return { claimed: claims.length, failed, leaseLost, deliveriesForgotten };
  }

  private async daemonPass(claim: SubscriptionsClaim): Promise<'done' | 'failed' | 'lease_lost'> {
    try {
      const connection = await this.repository.findConnection(claim.userId);
      if (!connection || connection.status === 'reauth_required') {
        await this.repository.release(claim, null, this.clock.now());
        return 'done';
      }
      const outcome = await this.pass(claim, connection, claim, false);
      if (outcome.kind !== 'done') return 'done';
      const saved = await this.repository.savePass(claim, outcome.result, this.clock.now());
      if (!saved) return 'lease_lost';
      return outcome.result.failed ? 'failed' : 'done';
    } catch (error) {
      this.logger.warn(`Jira webhook pass for connection ${shortId(claim.connectionId)} failed: ${(error as Error).message}`);
      await this.repository
        .releaseFailed(claim, this.retryAt(claim, error), this.clock.now())
        .catch((releaseError: unknown) => this.logger.warn(`Lease not handed back: ${(releaseError as Error).message}`));
      return 'failed';
    }
  }

  /** A pass for a caller waiting on it: on an error the lease is handed back (due again soon) and the error is the answer. */
  private async passReleasingOnError(claim: SubscriptionsClaim, connection: WebhookConnection, wanted: Wanted, interactive: boolean) {
    try {
      return await this.pass(claim, connection, wanted, interactive);
    } catch (error) {
      await this.repository.releaseFailed(claim, this.retryAt(claim, error), this.clock.now());
      throw error;
    }
  }

  /**
   * One connection's pass: on each site, Jira's list is compared with what is wanted; registrations Jira lists that
   * match a wanted subscription are kept (also those a pass that died before storing them made: never registered
   * twice), what is missing is registered, what is due is extended in one call per site, and what is not wanted is
   * deleted once every site is settled. With `interactive` (a PUT), a subscription Jira refuses stops the pass and
   * what it registered is deleted again.
   */
  private async pass(claim: SubscriptionsClaim, connection: WebhookConnection, wanted: Wanted, interactive: boolean): Promise<PassOutcome> {
    const now = this.clock.now();
    const existing = await this.repository.registrations(connection.id);
    const targets = (wanted.cloudIds ?? connection.cloudIds).filter((cloudId) => connection.cloudIds.includes(cloudId));
    // Registrations on a site the user no longer reaches cannot be listed or deleted there: they are dropped.
    const sites = [...new Set([...targets, ...existing.map((r) => r.cloudId)])].filter((c) => connection.cloudIds.includes(c)).sort();
    const plans: SitePlan[] = [];
    for (const cloudId of sites) {
      const rows = existing.filter((r) => r.cloudId === cloudId);
      const subscriptions = targets.includes(cloudId) ? wanted.subscriptions : [];
      const plan = await this.planSite(connection.userId, cloudId, rows, subscriptions, now, interactive);
      plans.push(plan);
      if (plan.refused !== undefined) {
        await this.takeBack(connection.userId, plans);
        return { kind: 'refused', reason: plan.refused };
      }
    }
    for (const plan of plans) await this.deleteUnwanted(connection.userId, plan, existing);
    const registrations = plans.flatMap((plan) => plan.rows);
    const failure = plans.find((plan) => plan.failure)?.failure;
    const dueAt = nextPassAt({
      now,
      expiries: registrations.filter((r) => r.status === 'active' && r.expiresAt).map((r) => r.expiresAt!),
      extendBeforeMs: this.config.jiraWebhooks.extendBeforeMs,
      reconcileIntervalMs: this.config.jiraWebhooks.reconcileIntervalMs,
      failure: failure && {
        consecutiveFailures: claim.consecutiveFailures + 1,
        random: this.random.next(),
        retryAfterMs: failure.retryAfterMs,
      },
    });
    return { kind: 'done', result: { registrations, dueAt, failed: failure !== undefined } };
  }

  private async planSite(
    userId: string,
    cloudId: string,
    rows: readonly Registration[],
    subscriptions: readonly JiraWebhookSubscription[],
    now: Date,
    interactive: boolean,
  ): Promise<SitePlan> {
    let listed: ListedWebhook[];
    try {
      listed = await this.client.list(userId, cloudId);
    } catch (error) {
      const failure = failureOf(error);
      return { cloudId, rows: failingRows(cloudId, rows, subscriptions, failure), created: [], unwanted: [], failure };
    }
    const ours = new Set(rows.map((r) => r.jiraWebhookId));
    // Ids this service stored come first, so a registration made twice keeps the one already known.
    const candidates = [...listed].sort((a, b) => Number(ours.has(b.id)) - Number(ours.has(a.id)) || a.id - b.id);
    const used = new Set<number>();
    const plan: SitePlan = { cloudId, rows: [], created: [], unwanted: [] };
    const missing: JiraWebhookSubscription[] = [];
    for (const subscription of subscriptions) {
      const key = subscriptionKey(subscription);
      const match = candidates.find((c) => !used.has(c.id) && subscriptionKey(c) === key);
      if (!match) {
        missing.push(subscription);
        continue;
      }
      used.add(match.id);
      const prior =
        rows.find((r) => r.jiraWebhookId === match.id) ?? rows.find((r) => r.jiraWebhookId === null && subscriptionKey(r) === key);
      plan.rows.push(registration(prior, cloudId, subscription, { jiraWebhookId: match.id, status: 'active', expiresAt: match.expiresAt }));
    }
    plan.unwanted = listed.filter((c) => !used.has(c.id));
    if (missing.length > 0) {
      const refused = await this.register(userId, plan, rows, missing, interactive);
      if (refused !== undefined) return { ...plan, refused };
      if (plan.failure) return plan;
    }
    await this.extend(userId, plan, now);
    return plan;
  }

  /** Registers `missing` on the plan's site; answers Jira's reason when it refuses one and the pass is a PUT. */
  private async register(
    userId: string,
    plan: SitePlan,
    rows: readonly Registration[],
    missing: readonly JiraWebhookSubscription[],
    interactive: boolean,
  ): Promise<string | undefined> {
    const url = `${this.config.publicUrl}${JIRA_WEBHOOK_RECEIVER_PATH}`;
    const prior = (subscription: JiraWebhookSubscription) =>
      rows.find((r) => r.jiraWebhookId === null && subscriptionKey(r) === subscriptionKey(subscription));
    let results;
    try {
      results = await this.client.register(userId, plan.cloudId, url, missing);
    } catch (error) {
      plan.failure = failureOf(error);
      for (const subscription of missing) {
        plan.rows.push(
          registration(prior(subscription), plan.cloudId, subscription, { status: 'failing', lastError: plan.failure.message }),
        );
      }
      return undefined;
    }
    let refused: string | undefined;
    results.forEach((result, index) => {
      const subscription = missing[index];
      if ('id' in result) {
        plan.created.push(result.id);
        plan.rows.push(registration(prior(subscription), plan.cloudId, subscription, { jiraWebhookId: result.id, status: 'active' }));
      } else if (interactive) {
        refused ??= result.refused;
      } else {
        const lastError = `Jira refused this subscription: ${result.refused}`;
        plan.rows.push(registration(prior(subscription), plan.cloudId, subscription, { status: 'failing', lastError }));
        plan.failure ??= { message: lastError };
      }
    });
    return refused;
  }

  /**
   * Extends, in one call for the site, every registration with less than JIRA_WEBHOOK_EXTEND_BEFORE_DAYS left, and
   * those just registered (Jira's answer is how their expirationDate is learnt, never assumed).
   */
  private async extend(userId: string, plan: SitePlan, now: Date): Promise<void> {
    const extendBeforeMs = this.config.jiraWebhooks.extendBeforeMs;
    const due = plan.rows.filter((r) => r.jiraWebhookId !== null && extensionDue(r.expiresAt, now, extendBeforeMs));
    if (due.length === 0) return;
    const renewals = due.filter((r) => !plan.created.includes(r.jiraWebhookId!)).length;
    const ids = new Set(due.map((r) => r.id));
    try {
      const expiresAt = await this.client.extend(
        userId,
        plan.cloudId,
        due.map((r) => r.jiraWebhookId!),
      );
      plan.rows = plan.rows.map((r) => (ids.has(r.id) ? { ...r, expiresAt, status: 'active', lastError: null } : r));
      this.metrics.recordExtensions('extended', renewals);
    } catch (error) {
      if (error instanceof DomainError) throw error;
      plan.failure = failureOf(error);
      const lastError = `Extending failed: ${plan.failure.message}`;
      plan.rows = plan.rows.map((r) => (ids.has(r.id) ? { ...r, status: 'failing', lastError } : r));
      this.metrics.recordExtensions('failed', renewals);
    }
  }

  /** Deletes at Jira what the site lists and nobody wants; what could not be deleted is kept `removed`, tried again. */
  private async deleteUnwanted(userId: string, plan: SitePlan, existing: readonly Registration[]): Promise<void> {
    if (plan.unwanted.length === 0) return;
    try {
      await this.client.remove(
        userId,
        plan.cloudId,
        plan.unwanted.map((w) => w.id),
      );
    } catch (error) {
      plan.failure = failureOf(error);
      const lastError = `Deleting at Jira failed: ${plan.failure.message}`;
      for (const webhook of plan.unwanted) {
        const prior = existing.find((r) => r.cloudId === plan.cloudId && r.jiraWebhookId === webhook.id);
        plan.rows.push(
          registration(prior, plan.cloudId, webhook, {
            jiraWebhookId: webhook.id,
            status: 'removed',
            expiresAt: webhook.expiresAt,
            lastError,
          }),
        );
      }
    }
  }

  /** A refused PUT leaves Jira as it found it: what the pass registered is deleted again. */
  private async takeBack(userId: string, plans: readonly SitePlan[]): Promise<void> {
    for (const plan of plans) {
      if (plan.created.length === 0) continue;
      try {
        await this.client.remove(userId, plan.cloudId, plan.created);
      } catch (error) {
        // The next pass lists them as registered and not wanted, and deletes them then.
        this.logger.warn(`Taking back ${plan.created.length} Jira webhooks failed: ${(error as Error).message}`);
      }
    }
  }

  private async requireConnection(userId: string): Promise<WebhookConnection> {
    const connection = await this.repository.findConnection(userId);
    if (!connection) throw new ConnectionNotFoundError(userId);
    return connection;
  }

  /** The connection's lease, waiting a while for another worker's pass over it to end. */
  private async claimWaiting(connection: WebhookConnection): Promise<SubscriptionsClaim> {
    const deadline = Date.now() + JIRA_WEBHOOK_POLICY.claimWaitMs;
    for (;;) {
      const claim = await this.repository.claimConnection(this.lease(this.clock.now()), connection.id);
      if (claim) return claim;
      if (Date.now() >= deadline) {
        throw new DomainError('atlassian_unavailable', "Another request is changing this user's Jira webhooks; try again shortly.", {
          'Retry-After': '5',
        });
      }
      await delay(JIRA_WEBHOOK_POLICY.claimPollMs);
    }
  }

  private lease(now: Date) {
    return { now, owner: this.owner, leaseExpiresAt: new Date(now.getTime() + leaseMsFor(this.config.jiraWebhooks.extendBeforeMs)) };
  }

  private retryAt(claim: SubscriptionsClaim, error: unknown): Date {
    return nextPassAt({
      now: this.clock.now(),
      expiries: [],
      extendBeforeMs: this.config.jiraWebhooks.extendBeforeMs,
      reconcileIntervalMs: this.config.jiraWebhooks.reconcileIntervalMs,
      failure: {
        consecutiveFailures: claim.consecutiveFailures + 1,
        random: this.random.next(),
        retryAfterMs: error instanceof AtlassianError ? error.details.retryAfterMs : undefined,
      },
    });
  }
}

function normalised(subscription: JiraWebhookSubscription): JiraWebhookSubscription {
  return {
    events: [...new Set(subscription.events)],
    jqlFilter: subscription.jqlFilter.trim(),
    ...(subscription.fieldIdsFilter ? { fieldIdsFilter: [...new Set(subscription.fieldIdsFilter)] } : {}),
  };
}

function distinct(subscriptions: readonly JiraWebhookSubscription[]): JiraWebhookSubscription[] {
  const byKey = new Map(subscriptions.map((s) => [subscriptionKey(s), s]));
  return [...byKey.values()];
}

/** Why a call to Jira failed, in words fit for `lastError` (never a token), and Atlassian's Retry-After. */
function failureOf(error: unknown): Failure {
  if (error instanceof DomainError) throw error;
  const message = (error as Error).message.slice(0, MAX_ERROR_LENGTH);
  return { message, retryAfterMs: error instanceof AtlassianError ? error.details.retryAfterMs : undefined };
}

/** Every entry of a site whose list could not be read: kept as they were, marked failing, with the wanted ones not yet there. */
function failingRows(
  cloudId: string,
  rows: readonly Registration[],
  subscriptions: readonly JiraWebhookSubscription[],
  failure: Failure,
): Registration[] {
  const wantedKeys = new Set(subscriptions.map(subscriptionKey));
  const kept = rows.map((r): Registration => ({
    ...r,
    status: wantedKeys.has(subscriptionKey(r)) ? 'failing' : 'removed',
    lastError: failure.message,
  }));
  const present = new Set(kept.map(subscriptionKey));
  const added = subscriptions
    .filter((s) => !present.has(subscriptionKey(s)))
    .map((s) => registration(undefined, cloudId, s, { status: 'failing', lastError: failure.message }));
  return [...kept, ...added];
}

function registration(
  prior: Registration | undefined,
  cloudId: string,
  subscription: JiraWebhookSubscription,
  state: Partial<Pick<Registration, 'jiraWebhookId' | 'status' | 'expiresAt' | 'lastError'>> & Pick<Registration, 'status'>,
): Registration {
  return {
    id: prior?.id ?? newRegistrationId(),
    cloudId,
    jiraWebhookId: state.jiraWebhookId ?? prior?.jiraWebhookId ?? null,
    events: [...subscription.events],
    jqlFilter: subscription.jqlFilter,
    ...(subscription.fieldIdsFilter ? { fieldIdsFilter: [...subscription.fieldIdsFilter] } : {}),
    status: state.status,
    expiresAt: state.expiresAt !== undefined ? state.expiresAt : (prior?.expiresAt ?? null),
    lastDeliveryAt: prior?.lastDeliveryAt ?? null,
    lastError: state.lastError ?? null,
  };
}
