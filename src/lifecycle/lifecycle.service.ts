import { Injectable, Logger } from '@nestjs/common';
import { DataSource, type EntityManager } from 'typeorm';
import { Clock } from '../common/clock.js';
import { AppConfig } from '../config/app-config.js';
import type { OutboxEvent } from '../webhooks/outbox.repository.js';
import { consentedBefore, consentExpiresAt } from './consent.policy.js';
import { ConnectionsRepository, type ReconsentDue, type ScopesOutdated } from '../connection-store/connections.repository.js';
import { missingScopes } from './scopes.js';

/** Connections marked and told per transaction: small enough to hold few row locks for long. */
const BATCH = 500;

export interface LifecycleReport {
  readonly reconsentDue: number;
  readonly scopesOutdated: number;
}

/**
 * The connection's clocks besides its tokens' (SPEC "Connection lifecycle"): the SaaS backend is told, once per
 * consent, when the 365-day consent is about to end (`connection.reconsent_due`) and when the grant lacks scopes the
 * service asks for (`connection.scopes_outdated`, once per consent and set of missing scopes). Each event is written in
 * the transaction that marks its connection as told, so replicas checking at once send it once, and a restart never
 * sends it again.
 */
@Injectable()
export class LifecycleService {
  private readonly logger = new Logger(LifecycleService.name);

  constructor(
    private readonly dataSource: DataSource,
    private readonly repository: ConnectionsRepository,
    private readonly config: AppConfig,
    private readonly clock: Clock,
  ) {}

  /** Tells about every connection that is due, in batches, each batch in its own transaction. */
  async sendDueEvents(): Promise<LifecycleReport> {
    const now = this.clock.now();
    const reconsentDue = await inBatches(() => this.repository.tellReconsentDue(this.warnedBefore(now), BATCH, now, reconsentDueEvent));
    const scopesOutdated = await inBatches(() => this.repository.tellScopesOutdated(BATCH, now, scopesOutdatedEvent));
    return { reconsentDue, scopesOutdated };
  }

  /** The same checks for one connection just consented to, in the consent's own transaction. */
  async checkConnection(manager: EntityManager, connectionId: string, now: Date): Promise<void> {
    await this.repository.tellReconsentDue(this.warnedBefore(now), 1, now, reconsentDueEvent, { manager, connectionId });
    await this.repository.tellScopesOutdated(1, now, scopesOutdatedEvent, { manager, connectionId });
  }

  /**
   * Recomputes every connection's missing scopes against ATLASSIAN_SCOPES, for a start after the configuration
   * changed; consents and refreshes keep them current afterwards.
   */
  async recomputeMissingScopes(): Promise<number> {
    const configured = this.config.atlassian.scopes;
    const changed = await this.repository.recomputeMissingScopes((granted) => missingScopes(configured, granted));
    if (changed > 0)
      this.logger.log(`Missing scopes changed for ${changed} connections against ATLASSIAN_SCOPES "${configured.join(' ')}"`);
    return changed;
  }

  /**
   * The scopes this user's grant lacks of ATLASSIAN_SCOPES (empty when none; undefined without a connection), e.g. to
   * explain an Atlassian refusal that says "scope does not match".
   */
  missingScopes(userId: string): Promise<string[] | undefined> {
    return this.repository.findMissingScopes(this.dataSource.manager, userId);
  }

  /** Less than RECONSENT_WARNING_DAYS left: the consent ends before now + the warning. */
  private warnedBefore(now: Date): Date {
    return consentedBefore(new Date(now.getTime() + this.config.lifecycle.reconsentWarningMs));
  }
}

async function inBatches(batch: () => Promise<number>): Promise<number> {
  let total = 0;
  for (;;) {
    const told = await batch();
    total += told;
    if (told < BATCH) return total;
  }
}

function reconsentDueEvent(connection: ReconsentDue): OutboxEvent {
  const data = {
    atlassianAccountId: connection.atlassianAccountId,
    consentedAt: connection.consentedAt.toISOString(),
    consentExpiresAt: consentExpiresAt(connection.consentedAt).toISOString(),
  };
  return { type: 'connection.reconsent_due', userId: connection.userId, data };
}

function scopesOutdatedEvent(connection: ScopesOutdated): OutboxEvent {
  const data = {
    atlassianAccountId: connection.atlassianAccountId,
    consentedAt: connection.consentedAt.toISOString(),
    missingScopes: connection.missingScopes,
  };
  return { type: 'connection.scopes_outdated', userId: connection.userId, data };
}
