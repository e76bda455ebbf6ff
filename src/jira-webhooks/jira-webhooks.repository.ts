import { randomUUID } from 'node:crypto';
import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, type EntityManager } from 'typeorm';
import type { JiraWebhookSubscription } from '../config/app-config.js';
import type { ConnectionStatus } from '../connection-store/connection.entity.js';
import { preparedStatement } from '../database/prepared-statement.js';
import { outboxBodySql } from '../webhooks/outbox.repository.js';
import type { RegistrationStatus } from './jira-webhook.entities.js';

/** A registration as the service keeps it; `jiraWebhookId` is null while registering it fails. */
export interface Registration extends JiraWebhookSubscription {
  readonly id: string;
  readonly cloudId: string;
  readonly jiraWebhookId: number | null;
  readonly status: RegistrationStatus;
  readonly expiresAt: Date | null;
  readonly lastDeliveryAt: Date | null;
  readonly lastError: string | null;
}

/** A connection as its webhooks need it: whose it is, whether it works, what it was granted, its sites. */
export interface WebhookConnection {
  readonly id: string;
  readonly userId: string;
  readonly status: ConnectionStatus;
  readonly scopes: readonly string[];
  readonly cloudIds: readonly string[];
}

export interface LeaseRequest {
  readonly now: Date;
  readonly owner: string;
  readonly leaseExpiresAt: Date;
}

/** A connection's wanted subscriptions, under this worker's lease. */
export interface SubscriptionsClaim {
  readonly connectionId: string;
  readonly userId: string;
  readonly leaseId: string;
  readonly subscriptions: readonly JiraWebhookSubscription[];
  /** The sites to register on; null for every site of the user. */
  readonly cloudIds: readonly string[] | null;
  readonly consecutiveFailures: number;
}

/** What a pass over one connection leaves behind, written under its lease. */
export interface PassResult {
  readonly registrations: readonly Registration[];
  readonly dueAt: Date;
  readonly failed: boolean;
  /** Set when the wanted state changes with this pass (a PUT or DELETE). */
  readonly wanted?: { readonly subscriptions: readonly JiraWebhookSubscription[]; readonly cloudIds: readonly string[] | null };
}

/** A verified delivery to record: Jira's JSON as received, what it names, and when it came. */
export interface DeliveryRecord {
  readonly identifier: string;
  readonly at: Date;
  /** The body as received: a JSON object. */
  readonly event: string;
  readonly matchedWebhookIds: readonly number[];
  /** The site it comes from; null when it names none. */
  readonly siteUrl: string | null;
}

/** What became of a delivery: forwarded, a retry of one recorded before, or for no registration of ours. */
export type RecordedDelivery = 'accepted' | 'duplicate' | 'unknown';

export interface RegistrationCounts {
  readonly byStatus: ReadonlyMap<RegistrationStatus, number>;
  /** The soonest expirationDate of a registration that is to be kept alive (its connection works); null without one. */
  readonly soonestExpiry: Date | null;
}

interface ClaimRow {
  connection_id: string;
  user_id: string;
  lease_id: string;
  subscriptions: JiraWebhookSubscription[];
  cloud_ids: string[] | null;
  consecutive_failures: number;
}

interface RegistrationRow {
  id: string;
  cloud_id: string;
  jira_webhook_id: string | null;
  events: string[];
  jql_filter: string;
  field_ids_filter: string[] | null;
  status: RegistrationStatus;
  expires_at: Date | null;
  last_delivery_at: Date | null;
  last_error: string | null;
}

/** Sets the lease on the rows the `candidates` sub-select picked and locked. $1 = now, $2 = owner, $3 = lease expiry. */
function claimStatement(candidates: string): string {
  return `
    UPDATE jira_webhook_subscriptions s SET
      lease_id = gen_random_uuid(), lease_owner = $2, lease_expires_at = $3, due_at = $3, updated_at = $1
    FROM (${candidates}) picked
    JOIN connections c ON c.id = picked.connection_id
    WHERE s.connection_id = picked.connection_id
    RETURNING s.connection_id, c.user_id, s.lease_id, s.subscriptions, s.cloud_ids, s.consecutive_failures`;
}

/**
 * A batch of verified deliveries, in one statement: one transaction and one commit. The input is each delivery ($1
 * identifier, $2 time, $3 event as received, $4 site URL or null) and each id it names ($5 the delivery's ordinal in
 * $1, $6 the id). Its identifier is recorded unless it was already (Jira's retry), and only then is it matched: a
 * registration with that id, on the delivery's site when it names one (ids may be unique per site only), of a site its
 * connection still lists. It becomes one `jira.event` outbox row per connection and site matched (its body as
 * `outboxBodySql` builds it, with the event as received), and the registrations' `last_delivery_at` becomes its time.
 * A registration row another transaction holds (a later delivery, a pass) keeps its time: the statement never waits
 * for one, so batches never deadlock on registrations. Identifiers are inserted in order, so
 * two batches naming the same ones wait for each other in one direction only. Answers one row per delivery.
 */
const RECORD_DELIVERIES_SQL = `
  WITH delivery AS (
    SELECT * FROM unnest($1::text[], $2::timestamptz[], $3::text[], $4::text[]) WITH ORDINALITY AS d(identifier, at, event, site_url, ordinal)),
  recorded AS (
    INSERT INTO jira_webhook_deliveries (identifier, received_at)
    SELECT identifier, at FROM delivery ORDER BY identifier
    ON CONFLICT (identifier) DO NOTHING
    RETURNING identifier),
  matched AS (
    SELECT d.ordinal, d.at, c.user_id, w.id AS registration_id, w.cloud_id, w.jira_webhook_id
    FROM delivery d
    JOIN recorded r ON r.identifier = d.identifier
    JOIN unnest($5::bigint[], $6::bigint[]) AS named(ordinal, jira_webhook_id) ON named.ordinal = d.ordinal
    JOIN jira_webhook_registrations w ON w.jira_webhook_id = named.jira_webhook_id AND w.status <> 'removed'
    JOIN accessible_resources a ON a.connection_id = w.connection_id AND a.cloud_id = w.cloud_id AND (d.site_url IS NULL OR a.url = d.site_url)
    JOIN connections c ON c.id = w.connection_id),
  event AS MATERIALIZED (
    SELECT gen_random_uuid() AS id, m.ordinal, m.user_id, m.cloud_id, array_agg(m.jira_webhook_id ORDER BY m.jira_webhook_id) AS jira_webhook_ids
    FROM matched m GROUP BY m.ordinal, m.user_id, m.cloud_id),
  enqueued AS (
    INSERT INTO webhook_outbox (id, type, user_id, body, created_at, next_attempt_at)
    SELECT e.id, 'jira.event', e.user_id,
      ${outboxBodySql('e.id', "'jira.event'", 'e.user_id', 'd.at', [
        ['cloudId', 'e.cloud_id'],
        ['jiraWebhookIds', 'e.jira_webhook_ids'],
        ['event', 'd.event::json'],
      ])},
      d.at, d.at
    FROM event e JOIN delivery d ON d.ordinal = e.ordinal),
  free AS MATERIALIZED (
    SELECT id FROM jira_webhook_registrations WHERE id IN (SELECT registration_id FROM matched) FOR UPDATE SKIP LOCKED),
  touched AS (
    UPDATE jira_webhook_registrations w SET last_delivery_at = t.at
    FROM (SELECT m.registration_id, max(m.at) AS at FROM matched m JOIN free f ON f.id = m.registration_id GROUP BY m.registration_id) t
    WHERE w.id = t.registration_id)
  SELECT d.ordinal::int AS ordinal, r.identifier IS NOT NULL AS recorded, EXISTS (SELECT 1 FROM event e WHERE e.ordinal = d.ordinal) AS matched
  FROM delivery d LEFT JOIN recorded r ON r.identifier = d.identifier`;

const REGISTRATION_COLUMNS = `id, cloud_id, jira_webhook_id, events, jql_filter, field_ids_filter, status, expires_at, last_delivery_at, last_error`;

/**
 * All SQL of Jira webhooks. A connection's pass (reconcile, register, extend, delete) runs under a lease on its
 * subscriptions row, claimed with SKIP LOCKED like a refresh; its result is written only while that lease holds, so a
 * worker whose lease was taken over writes nothing.
 */
@Injectable()
export class JiraWebhooksRepository {
  constructor(@InjectDataSource() private readonly dataSource: DataSource) {}

  /**
   * A consent was stored (in its transaction): a new connection gets `defaults` as its wanted subscriptions, and any
   * connection with subscriptions is reconciled at once (registered again after a reconnect).
   */
  async connected(manager: EntityManager, connectionId: string, defaults: readonly JiraWebhookSubscription[], now: Date): Promise<void> {
    if (defaults.length > 0) {
      await manager.query(
        `INSERT INTO jira_webhook_subscriptions (connection_id, subscriptions, due_at, updated_at) VALUES ($1, $2::jsonb, $3, $3)
         ON CONFLICT (connection_id) DO UPDATE SET due_at = $3, updated_at = $3`,
        [connectionId, JSON.stringify(defaults), now],
      );
    } else {
      await manager.query(`UPDATE jira_webhook_subscriptions SET due_at = $2, updated_at = $2 WHERE connection_id = $1`, [
        connectionId,
        now,
      ]);
    }
  }

  async findConnection(userId: string): Promise<WebhookConnection | null> {
    const rows: { id: string; user_id: string; status: ConnectionStatus; scopes: string[]; cloud_ids: string[] }[] =
      await this.dataSource.query(
        `SELECT c.id, c.user_id, c.status, c.scopes,
         coalesce(array_agg(r.cloud_id ORDER BY r.cloud_id) FILTER (WHERE r.cloud_id IS NOT NULL), '{}') AS cloud_ids
       FROM connections c LEFT JOIN accessible_resources r ON r.connection_id = c.id
       WHERE c.user_id = $1 GROUP BY c.id`,
        [userId],
      );
    const row = rows[0];
    return row ? { id: row.id, userId: row.user_id, status: row.status, scopes: row.scopes, cloudIds: row.cloud_ids } : null;
  }

  /** Leases up to `limit` connections whose pass is due, skipping those whose grant is gone and those others hold. */
  async claimDue(lease: LeaseRequest, limit: number): Promise<SubscriptionsClaim[]> {
    const candidates = `
      SELECT s.connection_id FROM jira_webhook_subscriptions s JOIN connections c ON c.id = s.connection_id
      WHERE s.due_at <= $1 AND c.status <> 'reauth_required'
      ORDER BY s.due_at LIMIT $4
      FOR UPDATE OF s SKIP LOCKED`;
    const rows = await this.run<ClaimRow>(claimStatement(candidates), [lease.now, lease.owner, lease.leaseExpiresAt, limit]);
    return rows.map(toClaim);
  }

  /**
   * Leases this connection now, due or not (a PUT or DELETE), creating its subscriptions row if it has none; null while
   * another worker holds a live lease on it.
   */
  async claimConnection(lease: LeaseRequest, connectionId: string): Promise<SubscriptionsClaim | null> {
    await this.run(
      `INSERT INTO jira_webhook_subscriptions (connection_id, subscriptions, updated_at) VALUES ($1, '[]'::jsonb, $2)
       ON CONFLICT (connection_id) DO NOTHING`,
      [connectionId, lease.now],
    );
    const candidates = `
      SELECT connection_id FROM jira_webhook_subscriptions
      WHERE connection_id = $4 AND (lease_id IS NULL OR lease_expires_at <= $1)
      FOR UPDATE SKIP LOCKED`;
    const rows = await this.run<ClaimRow>(claimStatement(candidates), [lease.now, lease.owner, lease.leaseExpiresAt, connectionId]);
    return rows.length > 0 ? toClaim(rows[0]) : null;
  }

  async registrations(connectionId: string): Promise<Registration[]> {
    const rows = await this.run<RegistrationRow>(
      `SELECT ${REGISTRATION_COLUMNS} FROM jira_webhook_registrations WHERE connection_id = $1 ORDER BY cloud_id, jira_webhook_id, id`,
      [connectionId],
    );
    return rows.map(toRegistration);
  }

  /**
   * Writes a pass's registrations (replacing the connection's), its next due time, and the wanted state when it
   * changed, and hands the lease back: all in one transaction, and only while the lease is still this claim's.
   * Answers false, writing nothing, when the lease was lost. A delivery's `last_delivery_at` written meanwhile stays.
   */
  async savePass(claim: SubscriptionsClaim, result: PassResult, now: Date): Promise<boolean> {
    return this.dataSource.transaction(async (manager) => {
      const wanted = result.wanted;
      const updated = await this.run(
        `UPDATE jira_webhook_subscriptions SET
           subscriptions = coalesce($3::jsonb, subscriptions),
           cloud_ids = CASE WHEN $4::boolean THEN $5::text[] ELSE cloud_ids END,
           due_at = $6, reconciled_at = $7, updated_at = $7,
           consecutive_failures = CASE WHEN $8::boolean THEN consecutive_failures + 1 ELSE 0 END,
           lease_id = NULL, lease_owner = NULL, lease_expires_at = NULL
         WHERE connection_id = $1 AND lease_id = $2
         RETURNING connection_id`,
        [
          claim.connectionId,
          claim.leaseId,
          wanted ? JSON.stringify(wanted.subscriptions) : null,
          wanted !== undefined,
          wanted?.cloudIds ?? null,
          result.dueAt,
          now,
          result.failed,
        ],
        manager,
      );
      if (updated.length === 0) return false;
      const kept = result.registrations;
      await manager.query(`DELETE FROM jira_webhook_registrations WHERE connection_id = $1 AND NOT (id = ANY($2::uuid[]))`, [
        claim.connectionId,
        kept.map((r) => r.id),
      ]);
      if (kept.length > 0) {
        await manager.query(
          `INSERT INTO jira_webhook_registrations
             (id, connection_id, cloud_id, jira_webhook_id, events, jql_filter, field_ids_filter, status, expires_at, last_error, created_at, updated_at)
           SELECT w.id, $1, w.cloud_id, w.jira_webhook_id, string_to_array(w.events, ' '), w.jql_filter,
             CASE WHEN w.field_ids IS NULL THEN NULL ELSE string_to_array(w.field_ids, ' ') END, w.status, w.expires_at, w.last_error, $2, $2
           FROM unnest($3::uuid[], $4::text[], $5::bigint[], $6::text[], $7::text[], $8::text[], $9::text[], $10::timestamptz[], $11::text[])
             AS w(id, cloud_id, jira_webhook_id, events, jql_filter, field_ids, status, expires_at, last_error)
           ON CONFLICT (id) DO UPDATE SET
             jira_webhook_id = excluded.jira_webhook_id, events = excluded.events, jql_filter = excluded.jql_filter,
             field_ids_filter = excluded.field_ids_filter, status = excluded.status, expires_at = excluded.expires_at,
             last_error = excluded.last_error, updated_at = excluded.updated_at`,
          [
            claim.connectionId,
            now,
            kept.map((r) => r.id),
            kept.map((r) => r.cloudId),
            kept.map((r) => r.jiraWebhookId),
            kept.map((r) => r.events.join(' ')),
            kept.map((r) => r.jqlFilter),
            kept.map((r) => r.fieldIdsFilter?.join(' ') ?? null),
            kept.map((r) => r.status),
            kept.map((r) => r.expiresAt),
            kept.map((r) => r.lastError),
          ],
        );
      }
      return true;
    });
  }

  /** Hands a lease back with nothing written but when to look again. */
  async release(claim: SubscriptionsClaim, dueAt: Date | null, now: Date): Promise<void> {
    await this.handBack(claim, dueAt, now, false);
  }

  /** Hands back the lease of a pass that failed before it could save anything, counting the failure for the backoff. */
  async releaseFailed(claim: SubscriptionsClaim, dueAt: Date, now: Date): Promise<void> {
    await this.handBack(claim, dueAt, now, true);
  }

  private async handBack(claim: SubscriptionsClaim, dueAt: Date | null, now: Date, failed: boolean): Promise<void> {
    await this.run(
      `UPDATE jira_webhook_subscriptions SET due_at = $3, updated_at = $4,
         consecutive_failures = CASE WHEN $5::boolean THEN consecutive_failures + 1 ELSE consecutive_failures END,
         lease_id = NULL, lease_owner = NULL, lease_expires_at = NULL
       WHERE connection_id = $1 AND lease_id = $2`,
      [claim.connectionId, claim.leaseId, dueAt, now, failed],
    );
  }

  /**
   * Records a batch of verified deliveries and forwards each as `jira.event` to the connections it matched, in one
   * statement (see RECORD_DELIVERIES_SQL), prepared once per pooled connection: planning it costs about as much as
   * running it. Answers, per delivery: `duplicate` when its identifier was recorded before, or earlier in `deliveries`
   * (which then writes nothing for it); otherwise `accepted`, or `unknown` when it matched no registration of ours.
   */
  async recordDeliveries(deliveries: readonly DeliveryRecord[]): Promise<RecordedDelivery[]> {
    const firsts = new Map<string, DeliveryRecord>();
    for (const delivery of deliveries) if (!firsts.has(delivery.identifier)) firsts.set(delivery.identifier, delivery);
    const distinct = [...firsts.values()];
    const named = distinct.flatMap((delivery, index) => [...new Set(delivery.matchedWebhookIds)].map((id) => [index + 1, id]));
    const rows = await preparedStatement<{ ordinal: number; recorded: boolean; matched: boolean }>(
      this.dataSource.manager,
      'jira_webhooks_record_deliveries',
      RECORD_DELIVERIES_SQL,
      [
        distinct.map((d) => d.identifier),
        distinct.map((d) => d.at),
        distinct.map((d) => d.event),
        distinct.map((d) => d.siteUrl),
        named.map(([ordinal]) => ordinal),
        named.map(([, id]) => id),
      ],
    );
    const outcomes = new Map<DeliveryRecord, RecordedDelivery>();
    for (const row of rows) outcomes.set(distinct[row.ordinal - 1], !row.recorded ? 'duplicate' : row.matched ? 'accepted' : 'unknown');
    return deliveries.map((delivery) => outcomes.get(delivery) ?? 'duplicate');
  }

  /** Forgets deliveries recorded before `before`, at most `limit` of them. */
  async purgeDeliveries(before: Date, limit: number): Promise<number> {
    const rows = await this.run(
      `DELETE FROM jira_webhook_deliveries WHERE identifier IN (
         SELECT identifier FROM jira_webhook_deliveries WHERE received_at < $1 LIMIT $2) RETURNING identifier`,
      [before, limit],
    );
    return rows.length;
  }

  /** Registrations by status as callers see them (a connection whose grant is gone has its own `paused`), and the soonest expiry. */
  async counts(): Promise<RegistrationCounts> {
    const rows = await this.run<{ status: RegistrationStatus; count: string; soonest: Date | null }>(
      `SELECT CASE WHEN c.status = 'reauth_required' AND w.status <> 'removed' THEN 'paused' ELSE w.status END AS status,
         count(*) AS count, min(w.expires_at) AS soonest
       FROM jira_webhook_registrations w JOIN connections c ON c.id = w.connection_id
       GROUP BY 1`,
      [],
    );
    const kept = rows.filter((r) => r.status === 'active' || r.status === 'failing').map((r) => r.soonest);
    const soonest = kept.filter((d): d is Date => d !== null).sort((a, b) => new Date(a).getTime() - new Date(b).getTime())[0];
    return { byStatus: new Map(rows.map((r) => [r.status, Number(r.count)])), soonestExpiry: soonest ? new Date(soonest) : null };
  }

  /** Rows and affected count, the same on `pg` and on embedded PGlite (their raw answers differ for UPDATE and DELETE). */
  private async run<T = unknown>(sql: string, params: unknown[], manager?: EntityManager): Promise<T[]> {
    const runner = manager?.queryRunner ?? this.dataSource.createQueryRunner();
    try {
      const result = await runner.query(sql, params, true);
      return (result.records ?? []) as T[];
    } finally {
      if (!manager) await runner.release();
    }
  }
}

/** A new registration's row id: settled before it is written, so a pass can refer to it. */
export function newRegistrationId(): string {
  return randomUUID();
}

function toClaim(row: ClaimRow): SubscriptionsClaim {
  return {
    connectionId: row.connection_id,
    userId: row.user_id,
    leaseId: row.lease_id,
    subscriptions: row.subscriptions,
    cloudIds: row.cloud_ids,
    consecutiveFailures: row.consecutive_failures,
  };
}

function toRegistration(row: RegistrationRow): Registration {
  return {
    id: row.id,
    cloudId: row.cloud_id,
    jiraWebhookId: row.jira_webhook_id === null ? null : Number(row.jira_webhook_id),
    events: row.events,
    jqlFilter: row.jql_filter,
    ...(row.field_ids_filter ? { fieldIdsFilter: row.field_ids_filter } : {}),
    status: row.status,
    expiresAt: row.expires_at,
    lastDeliveryAt: row.last_delivery_at,
    lastError: row.last_error,
  };
}
