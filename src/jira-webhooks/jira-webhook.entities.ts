import { Check, Column, Entity, Index, JoinColumn, ManyToOne, OneToOne, PrimaryColumn } from 'typeorm';
import type { JiraWebhookSubscription } from '../config/app-config.js';
import { ConnectionEntity } from '../connection-store/connection.entity.js';

export type RegistrationStatus = 'active' | 'failing' | 'paused' | 'removed';

/**
 * What a connection wants registered (on `cloud_ids`, or every site when null), and the daemon's lease on it: one
 * worker per connection across replicas reconciles, registers and extends, exactly as one refreshes.
 */
@Entity({ name: 'jira_webhook_subscriptions' })
@Index('jira_webhook_subscriptions_due_at_idx', ['dueAt'], { where: 'due_at IS NOT NULL' })
export class JiraWebhookSubscriptionsEntity {
  @PrimaryColumn({ name: 'connection_id', type: 'uuid' })
  connectionId: string;

  @OneToOne(() => ConnectionEntity, { onDelete: 'CASCADE' })
  @JoinColumn({ name: 'connection_id', foreignKeyConstraintName: 'jira_webhook_subscriptions_connection_id_fkey' })
  connection?: ConnectionEntity;

  @Column({ type: 'jsonb' })
  subscriptions: JiraWebhookSubscription[];

  @Column({ name: 'cloud_ids', type: 'text', array: true, nullable: true })
  cloudIds: string[] | null;

  @Column({ name: 'due_at', type: 'timestamptz', nullable: true })
  dueAt: Date | null;

  @Column({ name: 'reconciled_at', type: 'timestamptz', nullable: true })
  reconciledAt: Date | null;

  @Column({ name: 'consecutive_failures', type: 'integer', default: 0 })
  consecutiveFailures: number;

  @Column({ name: 'lease_id', type: 'uuid', nullable: true })
  leaseId: string | null;

  @Column({ name: 'lease_owner', type: 'text', nullable: true })
  leaseOwner: string | null;

  @Column({ name: 'lease_expires_at', type: 'timestamptz', nullable: true })
  leaseExpiresAt: Date | null;

  @Column({ name: 'updated_at', type: 'timestamptz' })
  updatedAt: Date;
}

/**
 * A registration at Jira, keyed by (Jira's webhook id, cloudId): ids are per site, and a delivery names only the id,
 * so the index leads with it. The id is null while registering it fails.
 */
@Entity({ name: 'jira_webhook_registrations' })
@Index('jira_webhook_registrations_jira_id_idx', ['jiraWebhookId', 'cloudId'], { unique: true })
@Index('jira_webhook_registrations_connection_idx', ['connectionId'])
@Check('jira_webhook_registrations_status_check', `status IN ('active', 'failing', 'paused', 'removed')`)
export class JiraWebhookRegistrationEntity {
  @PrimaryColumn({ type: 'uuid' })
  id: string;

  @Column({ name: 'connection_id', type: 'uuid' })
  connectionId: string;

  @ManyToOne(() => ConnectionEntity, { onDelete: 'CASCADE' })
  @JoinColumn({ name: 'connection_id', foreignKeyConstraintName: 'jira_webhook_registrations_connection_id_fkey' })
  connection?: ConnectionEntity;

  @Column({ name: 'cloud_id', type: 'text' })
  cloudId: string;

  @Column({ name: 'jira_webhook_id', type: 'bigint', nullable: true })
  jiraWebhookId: string | null;

  @Column({ type: 'text', array: true })
  events: string[];

  @Column({ name: 'jql_filter', type: 'text' })
  jqlFilter: string;

  @Column({ name: 'field_ids_filter', type: 'text', array: true, nullable: true })
  fieldIdsFilter: string[] | null;

  @Column({ type: 'text' })
  status: RegistrationStatus;

  /** Jira's `expirationDate`, as it reported it (never assumed). */
  @Column({ name: 'expires_at', type: 'timestamptz', nullable: true })
  expiresAt: Date | null;

  @Column({ name: 'last_delivery_at', type: 'timestamptz', nullable: true })
  lastDeliveryAt: Date | null;

  @Column({ name: 'last_error', type: 'text', nullable: true })
  lastError: string | null;

  @Column({ name: 'created_at', type: 'timestamptz' })
  createdAt: Date;

  @Column({ name: 'updated_at', type: 'timestamptz' })
  updatedAt: Date;
}

/** A delivery accepted, by X-Atlassian-Webhook-Identifier: Jira's retries of it within seven days are dropped. */
@Entity({ name: 'jira_webhook_deliveries' })
@Index('jira_webhook_deliveries_received_at_idx', ['receivedAt'])
export class JiraWebhookDeliveryEntity {
  @PrimaryColumn({ type: 'text' })
  identifier: string;

  @Column({ name: 'received_at', type: 'timestamptz' })
  receivedAt: Date;
}
