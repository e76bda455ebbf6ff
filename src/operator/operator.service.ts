import { Injectable } from '@nestjs/common';
import { Clock } from '../common/clock.js';
import { AppConfig } from '../config/app-config.js';
import { DatabaseStatusRepository } from '../database/database-status.repository.js';
import { type OAuthStateRecord, OAuthStatesRepository } from '../oauth/oauth-states.repository.js';
import { type RefreshStatusSnapshot, RefreshStatusService } from '../refresh/refresh-status.service.js';
import { type OutboxBacklog, WebhookDeliveryRepository } from '../webhooks/webhook-delivery.repository.js';

/**
 * What the operator's commands (`npm run cli`) read from the database. The command calls this service in its own
 * process, or asks the running service for the same answers when that one holds the embedded database.
 */
export interface OperatorReads {
  /** The database server's clock. */
  serverTime(): Promise<Date>;
  /** Names of the applied migrations; null when nothing was ever migrated. */
  appliedMigrations(): Promise<string[] | null>;
  webhookBacklog(): Promise<OutboxBacklog>;
  refreshStatus(examples: number): Promise<RefreshStatusSnapshot>;
  /** An authorization request by the SHA-256 of its state. */
  findState(stateHash: string): Promise<OAuthStateRecord | undefined>;
}

/** Which service answers, and the addresses it works with: a command compares them with its own configuration. */
export interface ServiceDescription {
  readonly pid: number;
  readonly startedAt: Date;
  readonly publicUrl: string;
  readonly callbackUrl: string;
  /** Where it sends authorization requests and code exchanges (the sandbox under PUBLIC_URL, or Atlassian). */
  readonly authUrl: string;
}

@Injectable()
export class OperatorService implements OperatorReads {
  private readonly startedAt: Date;

  constructor(
    private readonly config: AppConfig,
    clock: Clock,
    private readonly database: DatabaseStatusRepository,
    private readonly outbox: WebhookDeliveryRepository,
    private readonly refresh: RefreshStatusService,
    private readonly states: OAuthStatesRepository,
  ) {
    this.startedAt = clock.now();
  }

  describe(): ServiceDescription {
    const { publicUrl, atlassian } = this.config;
    return { pid: process.pid, startedAt: this.startedAt, publicUrl, callbackUrl: atlassian.callbackUrl, authUrl: atlassian.authUrl };
  }

  serverTime(): Promise<Date> {
    return this.database.serverTime();
  }

  appliedMigrations(): Promise<string[] | null> {
    return this.database.appliedMigrations();
  }

  webhookBacklog(): Promise<OutboxBacklog> {
    return this.outbox.backlog();
  }

  refreshStatus(examples: number): Promise<RefreshStatusSnapshot> {
    return this.refresh.snapshot(examples);
  }

  findState(stateHash: string): Promise<OAuthStateRecord | undefined> {
    return this.states.findByHash(stateHash);
  }
}
