import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { runStatement } from '../database/run-statement.js';
import type { WebhookEventType } from './webhook-event.entity.js';

/** An event this dispatcher holds: invisible to other replicas until `leaseUntil`. */
export interface ClaimedWebhook {
  readonly id: string;
  readonly type: WebhookEventType;
  readonly body: string;
  readonly createdAt: Date;
  /** Attempts recorded before this one. */
  readonly attempts: number;
}

export interface OutboxBacklog {
  /** Not delivered yet, still being tried. */
  readonly pending: number;
  /** Given up. */
  readonly dead: number;
  readonly oldestPendingAt: Date | null;
}

interface ClaimRow {
  id: string;
  type: WebhookEventType;
  body: string;
  created_at: Date;
  attempts: number;
}

/**
 * The dispatcher's side of the webhook outbox (writers use OutboxRepository). A claim locks due rows with
 * SKIP LOCKED for one statement and moves their next_attempt_at to the end of a lease, so concurrent replicas
 * never take the same event, and one that dies mid-send lets the event come due again when the lease ends.
 * Outcomes are written only while the event is still undelivered, so a late answer never undoes a delivery.
 */
@Injectable()
export class WebhookDeliveryRepository {
  constructor(@InjectDataSource() private readonly dataSource: DataSource) {}

  async claimDue(now: Date, leaseUntil: Date, limit: number): Promise<ClaimedWebhook[]> {
    const rows = await this.run<ClaimRow>(
      `UPDATE webhook_outbox o SET next_attempt_at = $2
       FROM (
         SELECT id FROM webhook_outbox
         WHERE delivered_at IS NULL AND dead_at IS NULL AND next_attempt_at <= $1
         ORDER BY next_attempt_at
         LIMIT $3
         FOR UPDATE SKIP LOCKED
       ) due
       WHERE o.id = due.id
       RETURNING o.id, o.type, o.body, o.created_at, o.attempts`,
      [now, leaseUntil, limit],
    );
    return rows.map((r) => ({ id: r.id, type: r.type, body: r.body, createdAt: r.created_at, attempts: r.attempts }));
  }

  async markDelivered(id: string, now: Date): Promise<void> {
    await this.run(
      `UPDATE webhook_outbox SET delivered_at = $2, attempts = attempts + 1, next_attempt_at = NULL, last_error = NULL
       WHERE id = $1 AND delivered_at IS NULL`,
      [id, now],
    );
  }

  async scheduleRetry(id: string, error: string, nextAttemptAt: Date): Promise<void> {
    await this.run(
      `UPDATE webhook_outbox SET attempts = attempts + 1, last_error = $2, next_attempt_at = $3
       WHERE id = $1 AND delivered_at IS NULL`,
      [id, error, nextAttemptAt],
    );
  }

  /** Gives the event up. `attempted` is false when it was not sent this time (it was already too old). */
  async markDead(id: string, error: string, now: Date, attempted: boolean): Promise<void> {
    await this.run(
      `UPDATE webhook_outbox SET dead_at = $3, next_attempt_at = NULL, last_error = $2,
         attempts = attempts + CASE WHEN $4::boolean THEN 1 ELSE 0 END
       WHERE id = $1 AND delivered_at IS NULL`,
      [id, error, now, attempted],
    );
  }

  /** Hands a claimed event back, due at once and with no attempt counted (the service is stopping). */
  async releaseClaim(id: string, now: Date): Promise<void> {
    await this.run(`UPDATE webhook_outbox SET next_attempt_at = $2 WHERE id = $1 AND delivered_at IS NULL`, [id, now]);
  }

  async backlog(): Promise<OutboxBacklog> {
    const rows = await this.run<{ pending: string; dead: string; oldest: Date | null }>(
      `SELECT count(*) FILTER (WHERE dead_at IS NULL) AS pending,
              count(*) FILTER (WHERE dead_at IS NOT NULL) AS dead,
              min(created_at) FILTER (WHERE dead_at IS NULL) AS oldest
       FROM webhook_outbox WHERE delivered_at IS NULL`,
      [],
    );
    return { pending: Number(rows[0].pending), dead: Number(rows[0].dead), oldestPendingAt: rows[0].oldest };
  }

  private async run<T = unknown>(sql: string, params: unknown[]): Promise<T[]> {
    return (await runStatement<T>(this.dataSource, sql, params)).rows;
  }
}
