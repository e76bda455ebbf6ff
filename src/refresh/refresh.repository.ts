import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, type EntityManager } from 'typeorm';
import type { ConnectionStatus } from '../connections/connection.entity.js';
import { type SealedValue, storedSealedValue } from '../crypto/token-cipher.js';
import { runStatement, type StatementResult } from '../database/run-statement.js';
import { OutboxRepository, type OutboxEvent } from '../webhooks/outbox.repository.js';

/** A connection this worker holds the lease of: everything a refresh needs, read in the claiming statement. */
export interface ClaimedConnection {
  readonly id: string;
  readonly userId: string;
  readonly atlassianAccountId: string;
  readonly status: ConnectionStatus;
  /** The version read under the lease; the answer is written only if it is still this. */
  readonly version: number;
  readonly leaseId: string;
  readonly leaseExpiresAt: Date;
  readonly refreshToken: SealedValue | null;
  readonly accessTokenExpiresAt: Date | null;
  readonly refreshTokenIssuedAt: Date | null;
  /** When the user consented to this grant: Atlassian ends it a year later. */
  readonly consentedAt: Date;
  readonly consecutiveFailures: number;
  /** When the stored refresh token was first presented without its answer being stored (this attempt, or an earlier one). */
  readonly attemptedAt: Date;
  /** The lease an earlier worker held and never handed back: it died or stalled mid-refresh. */
  readonly previousLeaseId: string | null;
  /** An earlier presentation of the same refresh token whose answer was never stored. */
  readonly previousAttemptedAt: Date | null;
  /** The due time before this claim, restored when the lease is handed back unused. */
  readonly previousDueAt: Date | null;
}

/** What the on-demand path reads to decide whether the stored access token will do. */
export interface TokenState {
  readonly id: string;
  readonly status: ConnectionStatus;
  readonly version: number;
  readonly accessToken: SealedValue | null;
  readonly accessTokenExpiresAt: Date | null;
  readonly dueAt: Date | null;
  readonly leaseId: string | null;
  readonly leaseExpiresAt: Date | null;
  /** When the stored tokens were issued: by the consent (then equal to consentedAt) or by a refresh. */
  readonly lastRefreshedAt: Date | null;
  readonly consentedAt: Date;
}

export interface LeaseRequest {
  readonly now: Date;
  readonly owner: string;
  readonly leaseExpiresAt: Date;
}

export interface RefreshedTokens {
  readonly accessToken: SealedValue;
  /** Null when Atlassian answered without a new refresh token: the stored one stays. */
  readonly refreshToken: SealedValue | null;
  readonly accessTokenExpiresAt: Date;
  /** Empty when the answer named none: the stored scopes stay. */
  readonly scopes: readonly string[];
  /** What those scopes lack of ATLASSIAN_SCOPES; kept as stored, like them, when the answer named none. */
  readonly missingScopes: readonly string[];
  readonly nextDueAt: Date;
}

export interface RefreshedWrite {
  readonly claim: ClaimedConnection;
  readonly tokens: RefreshedTokens;
  readonly refreshedAt: Date;
  /** Webhook events to write with it (e.g. `connection.recovered`). */
  readonly events: readonly OutboxEvent[];
}

export interface ConnectionCounts {
  readonly status: ConnectionStatus;
  readonly count: number;
  readonly expiringSoon: number;
}

/** The refresh job's backlog at one moment. */
export interface RefreshBacklog {
  /** The due time of the connection that has waited longest; null when none is overdue. */
  readonly oldestDueAt: Date | null;
  readonly overdue: number;
  /** Refreshes presented before the given time whose answer was never stored. */
  readonly unresolved: number;
}

/** A refresh token presented whose answer was never stored (refresh_attempted_at is cleared when it is). */
export interface UnresolvedRefresh {
  readonly userId: string;
  readonly status: ConnectionStatus;
  readonly attemptedAt: Date;
  readonly consecutiveFailures: number;
}

interface ClaimRow {
  id: string;
  user_id: string;
  atlassian_account_id: string;
  status: ConnectionStatus;
  version: number;
  lease_id: string;
  lease_expires_at: Date;
  refresh_token_ciphertext: string | null;
  refresh_token_key_id: string | null;
  access_token_expires_at: Date | null;
  refresh_token_issued_at: Date | null;
  consented_at: Date;
  consecutive_failures: number;
  refresh_attempted_at: Date;
  previous_lease_id: string | null;
  previous_attempted_at: Date | null;
  previous_due_at: Date | null;
}

interface TokenStateRow {
  id: string;
  status: ConnectionStatus;
  version: number;
  access_token_ciphertext: string | null;
  access_token_key_id: string | null;
  access_token_expires_at: Date | null;
  due_at: Date | null;
  lease_id: string | null;
  lease_expires_at: Date | null;
  last_refreshed_at: Date | null;
  consented_at: Date;
}

/**
 * Sets the lease on the rows selected (and row-locked) by the `candidates` sub-select, remembering what the
 * previous holder left behind. $1 = now, $2 = owner, $3 = lease expiry. `due_at` moves to the lease expiry, so
 * a worker that dies holding the lease has its rows claimed again by anyone once the lease is over.
 */
function claimStatement(candidates: string): string {
  return `
    UPDATE connections c SET
      lease_id = gen_random_uuid(),
      lease_owner = $2,
      lease_expires_at = $3,
      due_at = $3,
      refresh_attempted_at = coalesce(c.refresh_attempted_at, $1),
      updated_at = $1
    FROM (${candidates}) previous
    WHERE c.id = previous.id
    RETURNING c.id, c.user_id, c.atlassian_account_id, c.status, c.version, c.lease_id, c.lease_expires_at,
      c.refresh_token_ciphertext, c.refresh_token_key_id, c.access_token_expires_at, c.refresh_token_issued_at, c.consented_at,
      c.consecutive_failures, c.refresh_attempted_at,
      previous.previous_lease_id, previous.previous_attempted_at, previous.previous_due_at`;
}

const CANDIDATE_COLUMNS = 'id, lease_id AS previous_lease_id, refresh_attempted_at AS previous_attempted_at, due_at AS previous_due_at';

/** Connections waiting for a refresh at $1: what the backlog figures count (the daemon's claim takes its bound as $4). */
const OVERDUE = `due_at <= $1 AND status <> 'reauth_required'`;

/**
 * The daemon's claim: $4 = due at or before, $5 = batch size. It walks the due_at index from the oldest entry and
 * stops after $5 rows, so its cost does not grow with the table (exported for the benchmark's EXPLAIN).
 */
export const CLAIM_DUE_SQL = claimStatement(`
  SELECT ${CANDIDATE_COLUMNS} FROM connections
  WHERE due_at <= $4 AND status <> 'reauth_required'
  ORDER BY due_at
  LIMIT $5
  FOR UPDATE SKIP LOCKED`);

/** The compare-and-swap of new token pairs, for many rows at once: each row is written only under its own lease and version. */
const SAVE_REFRESHED_SQL = `
  UPDATE connections c SET
    access_token_ciphertext = w.access_ciphertext,
    access_token_key_id = w.access_key_id,
    refresh_token_ciphertext = coalesce(w.refresh_ciphertext, c.refresh_token_ciphertext),
    refresh_token_key_id = coalesce(w.refresh_key_id, c.refresh_token_key_id),
    refresh_token_issued_at = CASE WHEN w.refresh_ciphertext IS NULL THEN c.refresh_token_issued_at ELSE w.refreshed_at END,
    access_token_expires_at = w.expires_at,
    scopes = CASE WHEN w.scopes = '' THEN c.scopes ELSE string_to_array(w.scopes, ' ') END,
    missing_scopes = CASE WHEN w.scopes = '' THEN c.missing_scopes ELSE string_to_array(w.missing_scopes, ' ') END,
    due_at = w.due_at,
    last_refreshed_at = w.refreshed_at,
    updated_at = w.refreshed_at,
    status = 'active',
    version = c.version + 1,
    consecutive_failures = 0,
    refresh_attempted_at = NULL,
    lease_id = NULL, lease_owner = NULL, lease_expires_at = NULL
  FROM unnest($1::uuid[], $2::uuid[], $3::int[], $4::text[], $5::text[], $6::text[], $7::text[], $8::timestamptz[], $9::text[],
      $10::timestamptz[], $11::timestamptz[], $12::text[])
    AS w(id, lease_id, version, access_ciphertext, access_key_id, refresh_ciphertext, refresh_key_id, expires_at, scopes, due_at, refreshed_at,
      missing_scopes)
  WHERE c.id = w.id AND c.lease_id = w.lease_id AND c.version = w.version
  RETURNING c.id`;

/**
 * All SQL of refreshing. Claims take row locks with SKIP LOCKED only for the length of one statement and leave a
 * lease behind; every later write is a compare-and-swap on that lease (and, for tokens, the version), so a worker
 * whose lease was taken over can never overwrite what the new holder wrote.
 */
@Injectable()
export class RefreshRepository {
  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    private readonly outbox: OutboxRepository,
  ) {}

  /** Leases up to `limit` connections due at or before `dueBefore`, oldest due first, skipping rows others are claiming. */
  async claimDue(lease: LeaseRequest, dueBefore: Date, limit: number): Promise<ClaimedConnection[]> {
    const { rows } = await this.run<ClaimRow>(CLAIM_DUE_SQL, [lease.now, lease.owner, lease.leaseExpiresAt, dueBefore, limit]);
    return rows.map(toClaim);
  }

  /**
   * Leases this user's connection ahead of its due time, unless another worker holds a live lease on it or it is
   * failing and waiting out its backoff.
   */
  async claimOne(lease: LeaseRequest, userId: string): Promise<ClaimedConnection | null> {
    const candidates = `
      SELECT ${CANDIDATE_COLUMNS} FROM connections
      WHERE user_id = $4 AND status <> 'reauth_required'
        AND (lease_id IS NULL OR lease_expires_at <= $1)
        AND (status = 'active' OR due_at <= $1)
      FOR UPDATE SKIP LOCKED`;
    const { rows } = await this.run<ClaimRow>(claimStatement(candidates), [lease.now, lease.owner, lease.leaseExpiresAt, userId]);
    return rows.length > 0 ? toClaim(rows[0]) : null;
  }

  /**
   * Stores new token pairs, each only if its row still has the lease and version it was claimed with, hands those
   * leases back and schedules the next refreshes, in one statement; with events, in one transaction with them (an
   * event is written only for a row that was stored). Answers the ids stored: a missing id lost its lease.
   */
  async saveRefreshed(batch: readonly RefreshedWrite[]): Promise<Set<string>> {
    // Rows are locked in id order, so this cannot deadlock with another writer of many rows that does the same.
    const writes = [...batch].sort((a, b) => (a.claim.id < b.claim.id ? -1 : a.claim.id > b.claim.id ? 1 : 0));
    const params = [
      writes.map((w) => w.claim.id),
      writes.map((w) => w.claim.leaseId),
      writes.map((w) => w.claim.version),
      writes.map((w) => w.tokens.accessToken.ciphertext),
      writes.map((w) => w.tokens.accessToken.keyId),
      writes.map((w) => w.tokens.refreshToken?.ciphertext ?? null),
      writes.map((w) => w.tokens.refreshToken?.keyId ?? null),
      writes.map((w) => w.tokens.accessTokenExpiresAt),
      writes.map((w) => w.tokens.scopes.join(' ')),
      writes.map((w) => w.tokens.nextDueAt),
      writes.map((w) => w.refreshedAt),
      writes.map((w) => w.tokens.missingScopes.join(' ')),
    ];
    const withEvents = writes.filter((w) => w.events.length > 0);
    if (withEvents.length === 0) return idsOf((await this.run<{ id: string }>(SAVE_REFRESHED_SQL, params)).rows);
    return this.dataSource.transaction(async (manager) => {
      const saved = idsOf((await this.run<{ id: string }>(SAVE_REFRESHED_SQL, params, manager)).rows);
      for (const write of withEvents) {
        if (!saved.has(write.claim.id)) continue;
        for (const event of write.events) await this.outbox.enqueue(manager, event, write.refreshedAt);
      }
      return saved;
    });
  }

  /**
   * A transient failure: the connection is `refresh_failing` and due again at `retryAt`. `attemptedAt` is what
   * refresh_attempted_at becomes: kept when Atlassian may have rotated the token without us holding the answer.
   */
  async markFailing(
    claim: ClaimedConnection,
    failure: { error: string; retryAt: Date; attemptedAt: Date | null },
    now: Date,
  ): Promise<boolean> {
    const sql = `
      UPDATE connections SET
        status = 'refresh_failing',
        consecutive_failures = consecutive_failures + 1,
        last_error = $3,
        last_error_at = $4,
        due_at = $5,
        refresh_attempted_at = $6,
        updated_at = $4,
        lease_id = NULL, lease_owner = NULL, lease_expires_at = NULL
      WHERE id = $1 AND lease_id = $2`;
    const { affected } = await this.run(sql, [claim.id, claim.leaseId, failure.error, now, failure.retryAt, failure.attemptedAt]);
    return affected > 0;
  }

  /** The grant is gone: tokens dropped, never due again, and `events` written in the same transaction. */
  async markReauthRequired(claim: ClaimedConnection, error: string, now: Date, events: readonly OutboxEvent[]): Promise<boolean> {
    const sql = `
      UPDATE connections SET
        status = 'reauth_required',
        access_token_ciphertext = NULL, access_token_key_id = NULL,
        refresh_token_ciphertext = NULL, refresh_token_key_id = NULL,
        access_token_expires_at = NULL,
        due_at = NULL,
        refresh_attempted_at = NULL,
        last_error = $3,
        last_error_at = $4,
        updated_at = $4,
        version = version + 1,
        lease_id = NULL, lease_owner = NULL, lease_expires_at = NULL
      WHERE id = $1 AND lease_id = $2`;
    return this.writeUnderLease(sql, [claim.id, claim.leaseId, error, now], now, events);
  }

  /**
   * Hands the lease back untouched by a refresh: refresh_attempted_at goes back to what it was before the claim, and
   * due_at too unless `dueAt` says when to look again.
   */
  async releaseLease(claim: ClaimedConnection, now: Date, dueAt: Date | null = claim.previousDueAt): Promise<boolean> {
    const sql = `
      UPDATE connections SET
        due_at = $3,
        refresh_attempted_at = $4,
        updated_at = $5,
        lease_id = NULL, lease_owner = NULL, lease_expires_at = NULL
      WHERE id = $1 AND lease_id = $2`;
    const { affected } = await this.run(sql, [claim.id, claim.leaseId, dueAt, claim.previousAttemptedAt, now]);
    return affected > 0;
  }

  async findTokenState(userId: string): Promise<TokenState | null> {
    return (await this.findTokenStates([userId])).get(userId) ?? null;
  }

  /** The token states of several users' connections in one statement, by user id (users without one are absent). */
  async findTokenStates(userIds: readonly string[]): Promise<Map<string, TokenState>> {
    const { rows } = await this.run<TokenStateRow & { user_id: string }>(
      `SELECT user_id, id, status, version, access_token_ciphertext, access_token_key_id, access_token_expires_at, due_at, lease_id,
         lease_expires_at, last_refreshed_at, consented_at
       FROM connections WHERE user_id = ANY($1::text[])`,
      [userIds],
    );
    return new Map(
      rows.map((row) => [
        row.user_id,
        {
          id: row.id,
          status: row.status,
          version: row.version,
          accessToken: storedSealedValue(row.access_token_ciphertext, row.access_token_key_id),
          accessTokenExpiresAt: row.access_token_expires_at,
          dueAt: row.due_at,
          leaseId: row.lease_id,
          leaseExpiresAt: row.lease_expires_at,
          lastRefreshedAt: row.last_refreshed_at,
          consentedAt: row.consented_at,
        },
      ]),
    );
  }

  /** Connections per status, and how many of them hold an access token expiring before `soon`. One scan. */
  async countByStatus(soon: Date): Promise<ConnectionCounts[]> {
    const { rows } = await this.run<{ status: ConnectionStatus; count: string; expiring_soon: string }>(
      `SELECT status, count(*) AS count, count(*) FILTER (WHERE access_token_expires_at <= $1) AS expiring_soon
       FROM connections GROUP BY status`,
      [soon],
    );
    return rows.map((r) => ({ status: r.status, count: Number(r.count), expiringSoon: Number(r.expiring_soon) }));
  }

  /** The due time of the connection that has waited longest for a refresh (through the due_at index). */
  async oldestDueAt(now: Date): Promise<Date | null> {
    const { rows } = await this.run<{ due_at: Date | null }>(`SELECT min(due_at) AS due_at FROM connections WHERE ${OVERDUE}`, [now]);
    return rows[0]?.due_at ?? null;
  }

  /** How far behind the refresh job is at `now`, and how many refreshes presented before `unresolvedBefore` have no stored answer. */
  async backlog(now: Date, unresolvedBefore: Date): Promise<RefreshBacklog> {
    const { rows } = await this.run<{ oldest: Date | null; overdue: number; unresolved: number }>(
      `SELECT min(due_at) FILTER (WHERE ${OVERDUE}) AS oldest,
         count(*) FILTER (WHERE ${OVERDUE})::int AS overdue,
         count(*) FILTER (WHERE refresh_attempted_at < $2)::int AS unresolved
       FROM connections`,
      [now, unresolvedBefore],
    );
    const [row] = rows;
    return { oldestDueAt: row.oldest && new Date(row.oldest), overdue: row.overdue, unresolved: row.unresolved };
  }

  /** The oldest `limit` refreshes presented before `before` whose answer was never stored. */
  async findUnresolved(before: Date, limit: number): Promise<UnresolvedRefresh[]> {
    const { rows } = await this.run<{
      user_id: string;
      status: ConnectionStatus;
      refresh_attempted_at: Date;
      consecutive_failures: number;
    }>(
      `SELECT user_id, status, refresh_attempted_at, consecutive_failures FROM connections
       WHERE refresh_attempted_at < $1 ORDER BY refresh_attempted_at LIMIT $2`,
      [before, limit],
    );
    return rows.map((r) => ({
      userId: r.user_id,
      status: r.status,
      attemptedAt: new Date(r.refresh_attempted_at),
      consecutiveFailures: r.consecutive_failures,
    }));
  }

  /**
   * Leases the one connection whose refresh is due soonest, due or not, unless another worker holds it: the refresh
   * that probes the token endpoint during an outage.
   */
  async claimSoonestDue(lease: LeaseRequest): Promise<ClaimedConnection | null> {
    const candidates = `
      SELECT ${CANDIDATE_COLUMNS} FROM connections
      WHERE due_at IS NOT NULL AND status <> 'reauth_required' AND (lease_id IS NULL OR lease_expires_at <= $1)
      ORDER BY due_at
      LIMIT 1
      FOR UPDATE SKIP LOCKED`;
    const { rows } = await this.run<ClaimRow>(claimStatement(candidates), [lease.now, lease.owner, lease.leaseExpiresAt]);
    return rows.length > 0 ? toClaim(rows[0]) : null;
  }

  /**
   * During an outage of the token endpoint: active connections that fell due in (`after`, `upTo`] and are not being
   * refreshed become `refresh_failing` with `error`, untouched otherwise. Answers how many.
   */
  async markWaitingForEndpoint(stretch: { after: Date | null; upTo: Date }, error: string, now: Date): Promise<number> {
    const sql = `
      UPDATE connections SET status = 'refresh_failing', last_error = $3, last_error_at = $4, updated_at = $4
      WHERE due_at <= $2 AND ($1::timestamptz IS NULL OR due_at > $1) AND status = 'active' AND lease_id IS NULL`;
    return (await this.run(sql, [stretch.after, stretch.upTo, error, now])).affected;
  }

  /**
   * After an outage of the token endpoint: failing connections waiting out their own backoff are due now, those with
   * a refresh whose answer may have been lost first (at the time of that attempt), so they are refreshed inside
   * Atlassian's reuse leeway. Answers how many.
   */
  async bringForwardFailing(now: Date): Promise<number> {
    const sql = `
      UPDATE connections SET due_at = least(refresh_attempted_at, $1), updated_at = $1
      WHERE status = 'refresh_failing' AND lease_id IS NULL AND due_at > $1`;
    return (await this.run(sql, [now])).affected;
  }

  /** One statement when there is nothing else to write; with events, the update and the events commit together. */
  private async writeUnderLease(sql: string, params: unknown[], now: Date, events: readonly OutboxEvent[]): Promise<boolean> {
    if (events.length === 0) return (await this.run(sql, params)).affected > 0;
    return this.dataSource.transaction(async (manager) => {
      const { affected } = await this.run(sql, params, manager);
      if (affected === 0) return false;
      for (const event of events) await this.outbox.enqueue(manager, event, now);
      return true;
    });
  }

  private run<T = unknown>(sql: string, params: unknown[], manager?: EntityManager): Promise<StatementResult<T>> {
    return runStatement<T>(this.dataSource, sql, params, manager);
  }
}

function idsOf(rows: readonly { id: string }[]): Set<string> {
  return new Set(rows.map((row) => row.id));
}

function toClaim(row: ClaimRow): ClaimedConnection {
  return {
    id: row.id,
    userId: row.user_id,
    atlassianAccountId: row.atlassian_account_id,
    status: row.status,
    version: row.version,
    leaseId: row.lease_id,
    leaseExpiresAt: row.lease_expires_at,
    refreshToken: storedSealedValue(row.refresh_token_ciphertext, row.refresh_token_key_id),
    accessTokenExpiresAt: row.access_token_expires_at,
    refreshTokenIssuedAt: row.refresh_token_issued_at,
    consentedAt: row.consented_at,
    consecutiveFailures: row.consecutive_failures,
    attemptedAt: row.refresh_attempted_at,
    previousLeaseId: row.previous_lease_id,
    previousAttemptedAt: row.previous_attempted_at,
    previousDueAt: row.previous_due_at,
  };
}
