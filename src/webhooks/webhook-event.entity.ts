import { Column, Entity, Index, PrimaryColumn } from 'typeorm';

export type WebhookEventType =
  | 'connection.created'
  | 'connection.reauth_required'
  | 'connection.recovered'
  | 'connection.reconsent_due'
  | 'connection.scopes_outdated'
  | 'connection.deleted'
  | 'jira.event';

/** The durable outbox: an event is written in the same transaction as the change it reports, then delivered. */
@Entity({ name: 'webhook_outbox' })
@Index('webhook_outbox_pending_idx', ['nextAttemptAt'], { where: 'delivered_at IS NULL' })
export class WebhookEventEntity {
  @PrimaryColumn({ type: 'uuid' })
  id: string;

  @Column({ type: 'text' })
  type: WebhookEventType;

  @Column({ name: 'user_id', type: 'text' })
  userId: string;

  @Column({ type: 'text' })
  body: string;

  @Column({ name: 'created_at', type: 'timestamptz' })
  createdAt: Date;

  @Column({ type: 'integer', default: 0 })
  attempts: number;

  @Column({ name: 'next_attempt_at', type: 'timestamptz', nullable: true })
  nextAttemptAt: Date | null;

  @Column({ name: 'delivered_at', type: 'timestamptz', nullable: true })
  deliveredAt: Date | null;

  @Column({ name: 'last_error', type: 'text', nullable: true })
  lastError: string | null;

  /** Set when delivery was given up (too old, still failing); `next_attempt_at` is then null. */
  @Column({ name: 'dead_at', type: 'timestamptz', nullable: true })
  deadAt: Date | null;
}
