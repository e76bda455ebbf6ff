import { Injectable, Logger } from '@nestjs/common';
import { DataSource, type EntityManager } from 'typeorm';
import { Clock } from '../common/clock.js';
import { AppConfig } from '../config/app-config.js';
import { OutboxRepository } from '../webhooks/outbox.repository.js';
import { consentedBefore, consentExpiresAt } from './consent.policy.js';
import { LifecycleRepository, type ReconsentDue, type ScopesOutdated } from './lifecycle.repository.js';
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
    private readonly repository: LifecycleRepository,
    private readonly outbox: OutboxRepository,
    private readonly config: AppConfig,
    private readonly clock: Clock,
  ) {}

  /** Tells about every connection that is due, in batches, each batch in its own transaction. */
  async sendDueEvents(): Promise<LifecycleReport> {
    const now = this.clock.now();
    const reconsentDue = await this.inBatches((manager) => this.tellReconsentDue(manager, now, BATCH));
    const scopesOutdated = await this.inBatches((manager) => this.tellScopesOutdated(manager, now, BATCH));
    return { reconsentDue, scopesOutdated };
  }

  /** The same checks for one connection just consented to, in the consent's own transaction. */
  async checkConnection(manager: EntityManager, connectionId: string, now: Date): Promise<void> {
    await this.tellReconsentDue(manager, now, 1, connectionId);
    await this.tellScopesOutdated(manager, now, 1, connectionId);
  }

  /**
   * Recomputes every connection's missing scopes against ATLASSIAN_SCOPES, for a start after the configuration
   * changed; consents and refreshes keep them current afterwards.
   */
  async recomputeMissingScopes(): Promise<number> {
    const configured = this.config.atlassian.scopes;
    const changed = await this.dataSource.transaction(async (manager) => {
      const sets = await this.repository.grantedScopeSets(manager);
      return this.repository.storeMissingScopes(
        manager,
        sets.map((granted) => ({ granted, missing: missingScopes(configured, granted) })),
      );
    });
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

  private async inBatches(batch: (manager: EntityManager) => Promise<number>): Promise<number> {
    let total = 0;
    for (;;) {
      const told = await this.dataSource.transaction(batch);
      total += told;
      if (told < BATCH) return total;
    }
  }

  /** Less than RECONSENT_WARNING_DAYS left: the consent ends before now + the warning. */
  private async tellReconsentDue(manager: EntityManager, now: Date, limit: number, connectionId?: string): Promise<number> {
    const warnedBefore = consentedBefore(new Date(now.getTime() + this.config.lifecycle.reconsentWarningMs));
    const due: ReconsentDue[] = await this.repository.markReconsentDue(manager, warnedBefore, limit, connectionId);
    for (const connection of due) {
      const data = {
        atlassianAccountId: connection.atlassianAccountId,
        consentedAt: connection.consentedAt.toISOString(),
        consentExpiresAt: consentExpiresAt(connection.consentedAt).toISOString(),
      };
      await this.outbox.enqueue(manager, { type: 'connection.reconsent_due', userId: connection.userId, data }, now);
    }
    return due.length;
  }

  private async tellScopesOutdated(manager: EntityManager, now: Date, limit: number, connectionId?: string): Promise<number> {
    const outdated: ScopesOutdated[] = await this.repository.markScopesOutdated(manager, limit, connectionId);
    for (const connection of outdated) {
      const data = {
        atlassianAccountId: connection.atlassianAccountId,
        consentedAt: connection.consentedAt.toISOString(),
        missingScopes: connection.missingScopes,
      };
      await this.outbox.enqueue(manager, { type: 'connection.scopes_outdated', userId: connection.userId, data }, now);
    }
    return outdated.length;
  }
}
