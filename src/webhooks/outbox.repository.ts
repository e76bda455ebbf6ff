import { randomUUID } from 'node:crypto';
import { Injectable } from '@nestjs/common';
import type { EntityManager } from 'typeorm';
import type { WebhookEventType } from './webhook-event.entity.js';

export interface OutboxEvent {
  readonly type: WebhookEventType;
  readonly userId: string;
  /** More fields of the body, e.g. `{ atlassianAccountId, reason }`. Never a token. */
  readonly data?: Readonly<Record<string, unknown>>;
}

/**
 * An event's body as `enqueue` writes it (`id`, `type`, `userId`, `at`, then `data`'s fields, in that order), built by
 * Postgres, for a statement that enqueues many events at once. Each argument is an SQL expression: `at` a timestamptz,
 * `data` the fields' names and expressions. Postgres lays the JSON out with spaces around its `:` and `,`; a receiver
 * parses it, and each attempt still sends the same bytes.
 */
export function outboxBodySql(id: string, type: string, userId: string, at: string, data: readonly (readonly [string, string])[]): string {
  const fields = data.map(([name, expression]) => `'${name}', ${expression}`).join(', ');
  return `json_build_object('id', ${id}, 'type', ${type}, 'userId', ${userId}, 'at', to_char(${at} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'), ${fields})::text`;
}

/**
 * Writes webhook events into the outbox table. Call it with the EntityManager of the transaction that makes
 * the change the event reports: both commit together, or neither does. The body is fixed here, once,
 * so every delivery attempt sends (and signs) the same bytes.
 */
@Injectable()
export class OutboxRepository {
  async enqueue(manager: EntityManager, event: OutboxEvent, at: Date): Promise<string> {
    const id = randomUUID();
    const body = JSON.stringify({ id, type: event.type, userId: event.userId, at: at.toISOString(), ...event.data });
    await manager.query(
      `INSERT INTO webhook_outbox (id, type, user_id, body, created_at, next_attempt_at) VALUES ($1, $2, $3, $4, $5, $5)`,
      [id, event.type, event.userId, body, at],
    );
    return id;
  }
}
