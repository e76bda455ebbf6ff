import { randomUUID } from 'node:crypto';
import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, type EntityManager } from 'typeorm';
import type { AccessibleResource } from '../atlassian/atlassian.types.js';
import { type SealedValue, storedSealedValue } from '../crypto/token-cipher.js';
import { preparedStatement } from '../database/prepared-statement.js';
import { runStatement, type StatementResult } from '../database/run-statement.js';
import { StatementBatcher } from '../database/statement-batcher.js';
import { OutboxRepository, type OutboxEvent } from '../webhooks/outbox.repository.js';
import type { ResourceChange } from './accessible-resource-change.entity.js';
import { ConnectionCache } from './connection-cache.js';
import type { TokenState } from './token-state.js';
import type { ConnectionStatus } from './connection.entity.js';

/** Everything a fresh consent sets on a connection; the tokens are already sealed for its row. */
export interface ConnectedValues {
  readonly userId: string;
  readonly atlassianAccountId: string;
  readonly scopes: readonly string[];
  /** What the grant lacks of ATLASSIAN_SCOPES (see lifecycle/scopes.ts). */
  readonly missingScopes: readonly string[];
  readonly accessToken: SealedValue;
  readonly refreshToken: SealedValue;
  readonly accessTokenExpiresAt: Date;
  readonly dueAt: Date;
  readonly now: Date;
}

export interface StoredConnection {
  readonly id: string;
  readonly version: number;
  /** The user had a connection, whose tokens were replaced. */
  readonly replaced: boolean;
}

/** What the API shows of a connection: never a token. */
export interface ConnectionSummary {
  readonly userId: string;
  readonly status: ConnectionStatus;
  readonly atlassianAccountId: string;
  readonly scopes: string[];
  readonly missingScopes: string[];
  readonly accessTokenExpiresAt: Date | null;
  readonly lastRefreshedAt: Date | null;
  readonly lastError: string | null;
  readonly consentedAt: Date;
}

export interface ConnectionPageRequest {
  readonly status?: ConnectionStatus;
  /** Only connections consented to before this time (whose consent ends a year after it). */
  readonly consentedBefore?: Date;
  /** Keyset position: only users after this one (in user_id order). */
  readonly afterUserId?: string;
  readonly limit: number;
}

/** A connection's stored sites, in the API's shape, and when they were read from Atlassian. */
export interface StoredResources {
  readonly status: ConnectionStatus;
  readonly fetchedAt: Date | null;
  readonly resources: { id: string; url: string; name: string; scopes: string[]; avatarUrl: string | null }[];
}

/** Sites a re-read of the accessible resources found new, and those it no longer found (cloud ids, sorted). */
export interface ResourceChanges {
  readonly added: string[];
  readonly removed: string[];
}

export interface SiteAccess {
  readonly status: ConnectionStatus;
  readonly hasSite: boolean;
}

/** The tokens of one connection as read for re-encryption, with what the write will compare against. */
export interface StoredTokens {
  readonly id: string;
  readonly version: number;
  readonly accessToken: SealedValue | null;
  readonly refreshToken: SealedValue | null;
}

/** Tokens sealed again, and the row as it was read (what the write compares against). */
export interface ResealedTokens {
  readonly read: StoredTokens;
  readonly accessToken: SealedValue | null;
  readonly refreshToken: SealedValue | null;
}

export interface StaleTokenCount {
  readonly connections: number;
  /** Tokens not under the active key, per key id that sealed them. */
  readonly tokensByKey: Readonly<Record<string, number>>;
}

/** A row holding a token sealed with a key other than $1. */
const STALE = `(access_token_key_id <> $1 OR refresh_token_key_id <> $1)`;

export interface SiteCheck {
  readonly userId: string;
  readonly cloudId: string;
}

const FIND_SITE_ACCESS_SQL = `
  SELECT t.i::int AS index, c.status,
    EXISTS (SELECT 1 FROM accessible_resources r WHERE r.connection_id = c.id AND r.cloud_id = t.cloud_id) AS "hasSite"
  FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS t(user_id, cloud_id, i) JOIN connections c ON c.user_id = t.user_id`;

const FIND_RESOURCES_SQL = `
  SELECT c.user_id AS "userId", c.status, c.resources_fetched_at AS "fetchedAt",
    coalesce((SELECT json_agg(json_build_object('id', r.cloud_id, 'url', r.url, 'name', r.name, 'scopes', r.scopes, 'avatarUrl', r.avatar_url)
                              ORDER BY r.name, r.cloud_id)
              FROM accessible_resources r WHERE r.connection_id = c.id), '[]'::json) AS resources
  FROM connections c WHERE c.user_id = ANY($1::text[])`;

const SUMMARY_COLUMNS = `user_id AS "userId", status, atlassian_account_id AS "atlassianAccountId", scopes, missing_scopes AS "missingScopes",
  access_token_expires_at AS "accessTokenExpiresAt", last_refreshed_at AS "lastRefreshedAt", last_error AS "lastError",
  consented_at AS "consentedAt"`;

/** A grant's scopes and what they lack of the configuration, in the form stored for every connection with that grant. */
export interface ScopeSet {
  readonly granted: readonly string[];
  readonly missing: readonly string[];
}

/** A connection just marked as told that its consent ends soon. */
export interface ReconsentDue {
  readonly userId: string;
  readonly atlassianAccountId: string;
  readonly consentedAt: Date;
}

/** A connection just marked as told that its grant lacks `missingScopes`. */
export interface ScopesOutdated {
  readonly userId: string;
  readonly atlassianAccountId: string;
  readonly consentedAt: Date;
  readonly missingScopes: string[];
}

/**
 * Marks a batch as told, once: the sub-select locks candidates (skipping rows another replica is marking), and the
 * outer condition repeats the test on the row as it is now, so a row marked by a transaction that committed meanwhile
 * is neither marked nor answered twice. $1 is the batch size; `only` is the parameter of the one connection to mark.
 */
function markStatement(mark: { set: string; pending: (row: string) => string; order: string; returning: string; only?: string }): string {
  return `
    WITH marked AS (
      UPDATE connections c SET ${mark.set}
      FROM (SELECT id FROM connections
            WHERE status <> 'reauth_required' AND ${mark.pending('connections')}${mark.only ? ` AND id = ${mark.only}` : ''}
            ORDER BY ${mark.order} LIMIT $1 FOR UPDATE SKIP LOCKED) candidate
      WHERE c.id = candidate.id AND ${mark.pending('c')}
      RETURNING ${mark.returning})
    SELECT * FROM marked ORDER BY "consentedAt"`;
}

const TOLD = `c.user_id AS "userId", c.atlassian_account_id AS "atlassianAccountId", c.consented_at AS "consentedAt"`;

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
 * The reads every API call makes (a user's token state, stored sites, whether a site is the user's) share statements
 * when they arrive together: up to this many users per statement, one statement at a time. Reads that arrive while it
 * runs wait for it (a fraction of a millisecond) and go together in the next one: under load, fewer and fuller round
 * trips leave the process and the database more time than a second statement in flight.
 */
const READ_BATCH = 64;
const READ_FLUSHES = 1;
/** New token pairs stored together in one statement under load, and how many such statements run at once. */
const SAVE_BATCH = 256;
const SAVE_FLUSHES = 4;

/**
 * All SQL on the connections table and the sites that hang on it: storing a consent, the API's reads, re-encryption,
 * the connection lifecycle's once-per-consent marks, and refreshing.
 *
 * Writes that must commit together (a consent with its sites and its webhook event, a deletion with its event, a
 * lifecycle mark with its event) run in a transaction the method opens itself. Methods that take an EntityManager
 * run in a transaction one of those opened, or on the data source's manager for a single read. Refreshing's claims
 * take row locks with SKIP LOCKED only for the length of one statement and leave a lease behind; every later write is a
 * compare-and-swap on that lease (and, for tokens, the version), so a worker whose lease was taken over can never
 * overwrite what the new holder wrote. The reads every API call makes, and the daemon's writes of new tokens, share
 * statements with concurrent ones (StatementBatcher) behind the methods that say so.
 */
@Injectable()
export class ConnectionsRepository {
  private readonly tokenStateReads: StatementBatcher<string, TokenState | undefined>;
  private readonly resourceReads: StatementBatcher<string, StoredResources | undefined>;
  private readonly siteAccessReads: StatementBatcher<SiteCheck, SiteAccess | undefined>;
  private readonly refreshedSaves: StatementBatcher<RefreshedWrite, boolean>;

  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    private readonly outbox: OutboxRepository,
    private readonly cache: ConnectionCache,
  ) {
    this.tokenStateReads = new StatementBatcher(
      async (userIds) => {
        const found = await this.findTokenStates(userIds);
        return userIds.map((userId) => found.get(userId));
      },
      READ_BATCH,
      READ_FLUSHES,
    );
    this.resourceReads = new StatementBatcher(
      async (userIds) => {
        const found = await this.findResources(this.dataSource.manager, userIds);
        return userIds.map((userId) => found.get(userId));
      },
      READ_BATCH,
      READ_FLUSHES,
    );
    this.siteAccessReads = new StatementBatcher((checks) => this.findSiteAccess(this.dataSource.manager, checks), READ_BATCH, READ_FLUSHES);
    this.refreshedSaves = new StatementBatcher(
      async (writes) => {
        const saved = await this.saveRefreshed(writes);
        return writes.map((write) => saved.has(write.claim.id));
      },
      SAVE_BATCH,
      SAVE_FLUSHES,
    );
  }

  /**
   * Stores a consent in one transaction: the connection (created, or its tokens replaced and its status back to
   * active), its sites and `consent.event`, then `alsoInTransaction` (what else the new consent is due). Tokens are
   * sealed for the row they go into, so `consent.valuesFor` is given the row's id once it is settled. Only the
   * transaction's manager is used inside: the embedded database is a single session.
   */
  storeConnected(
    consent: {
      readonly userId: string;
      readonly resources: readonly AccessibleResource[];
      readonly event: OutboxEvent;
      readonly valuesFor: (connectionId: string) => ConnectedValues;
    },
    now: Date,
    alsoInTransaction: (manager: EntityManager, connectionId: string) => Promise<void>,
  ): Promise<StoredConnection> {
    const stored = this.dataSource.transaction(async (manager) => {
      const stored = await this.upsertConnected(manager, consent.userId, consent.valuesFor);
      await this.replaceResources(manager, stored.id, consent.resources, now);
      await this.outbox.enqueue(manager, consent.event, now);
      await alsoInTransaction(manager, stored.id);
      return stored;
    });
    return this.changing([consent.userId], stored);
  }

  private async upsertConnected(
    manager: EntityManager,
    userId: string,
    valuesFor: (connectionId: string) => ConnectedValues,
  ): Promise<StoredConnection> {
    let id = await this.lockByUserId(manager, userId);
    if (id === undefined) {
      const newId = randomUUID();
      if (await this.insertConnected(manager, newId, valuesFor(newId))) return { id: newId, version: 1, replaced: false };
      // Another callback for this user committed its insert meanwhile: replace what it stored, like a reconnect.
      id = (await this.lockByUserId(manager, userId))!;
    }
    const version = await this.replaceConnected(manager, id, valuesFor(id));
    return { id, version, replaced: true };
  }

  /** The id of the user's connection, locked until the transaction ends. */
  private async lockByUserId(manager: EntityManager, userId: string): Promise<string | undefined> {
    const rows: { id: string }[] = await manager.query(`SELECT id FROM connections WHERE user_id = $1 FOR UPDATE`, [userId]);
    return rows[0]?.id;
  }

  /**
   * Inserts the connection under `id`, unless the user got one meanwhile (another callback committed first):
   * then nothing is written and the answer is false.
   */
  private async insertConnected(manager: EntityManager, id: string, values: ConnectedValues): Promise<boolean> {
    const rows: { id: string }[] = await manager.query(
      `INSERT INTO connections (
         id, user_id, atlassian_account_id, status, scopes,
         access_token_ciphertext, access_token_key_id, refresh_token_ciphertext, refresh_token_key_id,
         access_token_expires_at, refresh_token_issued_at, last_refreshed_at, version, due_at,
         consecutive_failures, resources_fetched_at, consented_at, created_at, updated_at, missing_scopes)
       VALUES ($1, $2, $3, 'active', $4::text[], $5, $6, $7, $8, $9, $10, $10, 1, $11, 0, $10, $10, $10, $10, $12::text[])
       ON CONFLICT (user_id) DO NOTHING
       RETURNING id`,
      [id, values.userId, ...connectedParameters(values)],
    );
    return rows.length === 1;
  }

  /**
   * Replaces the tokens of an existing connection and starts its refresh bookkeeping and its consent clock afresh; the
   * row (its id, and what hangs on it) stays. Bumping the version and clearing the lease makes a refresh of the old
   * tokens that is still in flight fail its compare-and-swap.
   */
  private async replaceConnected(manager: EntityManager, id: string, values: ConnectedValues): Promise<number> {
    const result: [{ version: number }[], number] = await manager.query(
      `UPDATE connections SET
         atlassian_account_id = $2, status = 'active', scopes = $3::text[],
         access_token_ciphertext = $4, access_token_key_id = $5, refresh_token_ciphertext = $6, refresh_token_key_id = $7,
         access_token_expires_at = $8, refresh_token_issued_at = $9, last_refreshed_at = $9, version = version + 1, due_at = $10,
         lease_id = NULL, lease_owner = NULL, lease_expires_at = NULL, refresh_attempted_at = NULL,
         consecutive_failures = 0, last_error = NULL, last_error_at = NULL, resources_fetched_at = $9, consented_at = $9, updated_at = $9,
         missing_scopes = $11::text[]
       WHERE id = $1
       RETURNING version`,
      [id, ...connectedParameters(values)],
    );
    return result[0][0].version;
  }

  /** The sites are what Atlassian listed just now; a site already known keeps the time it was first seen. */
  async replaceResources(manager: EntityManager, connectionId: string, resources: readonly AccessibleResource[], now: Date): Promise<void> {
    await manager.query(`DELETE FROM accessible_resources WHERE connection_id = $1 AND NOT (cloud_id = ANY($2::text[]))`, [
      connectionId,
      resources.map((r) => r.id),
    ]);
    if (resources.length === 0) return;
    await manager.query(
      `INSERT INTO accessible_resources (connection_id, cloud_id, url, name, scopes, avatar_url, first_seen_at)
       SELECT $1, r.id, r.url, r.name, ARRAY(SELECT jsonb_array_elements_text(r.scopes)), r.avatar_url, $3
         FROM jsonb_to_recordset($2::jsonb) AS r(id text, url text, name text, scopes jsonb, avatar_url text)
       ON CONFLICT (connection_id, cloud_id) DO UPDATE
         SET url = EXCLUDED.url, name = EXCLUDED.name, scopes = EXCLUDED.scopes, avatar_url = EXCLUDED.avatar_url`,
      [
        connectionId,
        JSON.stringify(resources.map((r) => ({ id: r.id, url: r.url, name: r.name, scopes: r.scopes, avatar_url: r.avatarUrl }))),
        now,
      ],
    );
  }

  async findSummary(manager: EntityManager, userId: string): Promise<ConnectionSummary | undefined> {
    const rows: ConnectionSummary[] = await manager.query(`SELECT ${SUMMARY_COLUMNS} FROM connections WHERE user_id = $1`, [userId]);
    return rows[0];
  }

  /**
   * One page in user_id order after `afterUserId`, walking an index (connections_status_user_id_idx with a status,
   * the user_id key without), so a page costs the same wherever it starts. Asks for one row more than `limit`, which
   * tells the caller whether another page follows.
   */
  async findPage(manager: EntityManager, page: ConnectionPageRequest): Promise<ConnectionSummary[]> {
    const params: unknown[] = [page.afterUserId ?? '', page.limit + 1];
    const conditions = ['user_id > $1'];
    if (page.status !== undefined) conditions.push(`status = $${params.push(page.status)}`);
    if (page.consentedBefore !== undefined) conditions.push(`consented_at < $${params.push(page.consentedBefore)}`);
    return manager.query(`SELECT ${SUMMARY_COLUMNS} FROM connections WHERE ${conditions.join(' AND ')} ORDER BY user_id LIMIT $2`, params);
  }

  /**
   * Deletes the user's connection (its sites and their history go with it, ON DELETE CASCADE) and writes the
   * `connection.deleted` event in the same transaction. False when the user has no connection. The DELETE is wrapped in
   * a SELECT because TypeORM answers a bare DELETE differently on `pg` and on embedded PGlite.
   */
  deleteByUserId(userId: string, now: Date): Promise<boolean> {
    const deleted = this.dataSource.transaction(async (manager) => {
      const rows: { atlassianAccountId: string }[] = await manager.query(
        `WITH deleted AS (DELETE FROM connections WHERE user_id = $1 RETURNING atlassian_account_id)
         SELECT atlassian_account_id AS "atlassianAccountId" FROM deleted`,
        [userId],
      );
      if (rows.length === 0) return false;
      await this.outbox.enqueue(
        manager,
        { type: 'connection.deleted', userId, data: { atlassianAccountId: rows[0].atlassianAccountId } },
        now,
      );
      return true;
    });
    return this.changing([userId], deleted);
  }

  /**
   * The connections' status and sites, for several users in one prepared statement: this is the API's most frequent
   * read, and concurrent requests share it. Users without a connection are absent from the map.
   */
  async findResources(manager: EntityManager, userIds: readonly string[]): Promise<Map<string, StoredResources>> {
    const rows = await preparedStatement<StoredResources & { userId: string }>(manager, 'connections_find_resources', FIND_RESOURCES_SQL, [
      userIds,
    ]);
    return new Map(rows.map(({ userId, ...stored }) => [userId, stored]));
  }

  /** The user's connection's status and sites, outside a transaction, in a statement shared with concurrent reads. */
  findResourcesOf(userId: string): Promise<StoredResources | undefined> {
    return this.resourceReads.submit(userId);
  }

  /**
   * Stores the sites Atlassian listed when asked at `askedAt`, in one transaction with the connection locked (two
   * re-reads are stored one after the other): replaces the stored set, records each site added or removed, and answers
   * the stored sites with what changed. A set stored by a newer read that finished first (a reconnect) is kept, with no
   * changes. Undefined when the user has no connection.
   */
  storeFetchedResources(
    userId: string,
    resources: readonly AccessibleResource[],
    askedAt: Date,
    now: Date,
  ): Promise<{ stored: StoredResources; changes: ResourceChanges } | undefined> {
    const stored = this.dataSource.transaction(async (manager) => {
      const rows: { connectionId: string; fetchedAt: Date | null; cloudIds: string[] }[] = await manager.query(
        `SELECT c.id AS "connectionId", c.resources_fetched_at AS "fetchedAt",
           ARRAY(SELECT r.cloud_id FROM accessible_resources r WHERE r.connection_id = c.id) AS "cloudIds"
         FROM connections c WHERE c.user_id = $1 FOR UPDATE`,
        [userId],
      );
      const [locked] = rows;
      if (!locked) return undefined;
      let changes: ResourceChanges = { added: [], removed: [] };
      if (locked.fetchedAt === null || new Date(locked.fetchedAt) <= askedAt) {
        changes = difference(locked.cloudIds, resources);
        await this.replaceResources(manager, locked.connectionId, resources, now);
        await manager.query(
          `INSERT INTO accessible_resource_changes (connection_id, cloud_id, change, at)
           SELECT $1, c.cloud_id, c.change, $4 FROM unnest($2::text[], $3::text[]) AS c(cloud_id, change)`,
          [
            locked.connectionId,
            [...changes.added, ...changes.removed],
            [...changes.added.map((): ResourceChange => 'added'), ...changes.removed.map((): ResourceChange => 'removed')],
            now,
          ],
        );
        await manager.query(`UPDATE connections SET resources_fetched_at = $2, updated_at = $2 WHERE id = $1`, [locked.connectionId, now]);
      }
      const stored = (await this.findResources(manager, [userId])).get(userId)!;
      return { stored, changes };
    });
    return this.changing([userId], stored);
  }

  /** Tokens not sealed under `activeKeyId`, per key, and the connections holding them. */
  async countStaleTokens(manager: EntityManager, activeKeyId: string): Promise<StaleTokenCount> {
    const rows: { key_id: string; tokens: number }[] = await manager.query(
      `SELECT key_id, count(*)::int AS tokens FROM (
         SELECT access_token_key_id AS key_id FROM connections WHERE access_token_key_id <> $1
         UNION ALL
         SELECT refresh_token_key_id FROM connections WHERE refresh_token_key_id <> $1
       ) stale GROUP BY key_id ORDER BY key_id`,
      [activeKeyId],
    );
    const [{ connections }]: { connections: number }[] = await manager.query(
      `SELECT count(*)::int AS connections FROM connections WHERE ${STALE}`,
      [activeKeyId],
    );
    return { connections, tokensByKey: Object.fromEntries(rows.map((r) => [r.key_id, r.tokens])) };
  }

  /** The next `limit` connections after `afterId` (in id order) holding a token not under `activeKeyId`. */
  async findStaleTokensAfter(manager: EntityManager, activeKeyId: string, afterId: string | null, limit: number): Promise<StoredTokens[]> {
    const rows: {
      id: string;
      version: number;
      access_token_ciphertext: string | null;
      access_token_key_id: string | null;
      refresh_token_ciphertext: string | null;
      refresh_token_key_id: string | null;
    }[] = await manager.query(
      `SELECT id, version, access_token_ciphertext, access_token_key_id, refresh_token_ciphertext, refresh_token_key_id
       FROM connections
       WHERE ${STALE} AND ($2::uuid IS NULL OR id > $2::uuid)
       ORDER BY id
       LIMIT $3`,
      [activeKeyId, afterId, limit],
    );
    return rows.map((r) => ({
      id: r.id,
      version: r.version,
      accessToken: storedSealedValue(r.access_token_ciphertext, r.access_token_key_id),
      refreshToken: storedSealedValue(r.refresh_token_ciphertext, r.refresh_token_key_id),
    }));
  }

  /**
   * Writes re-encrypted tokens in one statement (one commit), each row only if nothing changed it since it was read:
   * same version (every token write bumps it) and same ciphertexts (in case one ever does not). It never bumps the
   * version itself: re-encryption changes no token, so a refresh in flight must still be allowed to write its answer.
   * Returns the ids written; a row left out was changed meanwhile and keeps its newer value.
   */
  async replaceTokensIfUnchanged(manager: EntityManager, batch: readonly ResealedTokens[]): Promise<string[]> {
    if (batch.length === 0) return [];
    const column = <T>(pick: (r: ResealedTokens) => T): T[] => batch.map(pick);
    // Wrapped in a SELECT, which both drivers answer with the plain rows.
    const rows: { id: string }[] = await manager.query(
      `WITH written AS (
         UPDATE connections c SET
           access_token_ciphertext = v.access_ciphertext, access_token_key_id = v.access_key_id,
           refresh_token_ciphertext = v.refresh_ciphertext, refresh_token_key_id = v.refresh_key_id
         FROM unnest($1::uuid[], $2::int[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[])
           AS v(id, version, read_access, read_refresh, access_ciphertext, access_key_id, refresh_ciphertext, refresh_key_id)
         WHERE c.id = v.id AND c.version = v.version
           AND c.access_token_ciphertext IS NOT DISTINCT FROM v.read_access
           AND c.refresh_token_ciphertext IS NOT DISTINCT FROM v.read_refresh
         RETURNING c.id)
       SELECT id FROM written`,
      [
        column((r) => r.read.id),
        column((r) => r.read.version),
        column((r) => r.read.accessToken?.ciphertext ?? null),
        column((r) => r.read.refreshToken?.ciphertext ?? null),
        column((r) => r.accessToken?.ciphertext ?? null),
        column((r) => r.accessToken?.keyId ?? null),
        column((r) => r.refreshToken?.ciphertext ?? null),
        column((r) => r.refreshToken?.keyId ?? null),
      ],
    );
    return rows.map((r) => r.id);
  }

  /** Whether the user's connection lists the site (every product call asks first), in a statement shared with concurrent checks. */
  checkSiteAccess(check: SiteCheck): Promise<SiteAccess | undefined> {
    return this.siteAccessReads.submit(check);
  }

  /** For each (user, site): the user's connection's status and whether it lists the site; undefined without a connection. */
  async findSiteAccess(manager: EntityManager, checks: readonly SiteCheck[]): Promise<(SiteAccess | undefined)[]> {
    const rows = await preparedStatement<SiteAccess & { index: number }>(manager, 'connections_find_site_access', FIND_SITE_ACCESS_SQL, [
      checks.map((check) => check.userId),
      checks.map((check) => check.cloudId),
    ]);
    const found: (SiteAccess | undefined)[] = checks.map(() => undefined);
    for (const { index, ...access } of rows) found[index - 1] = access;
    return found;
  }

  // The connection lifecycle: the scopes grants lack, and the once-per-consent marks of what the SaaS backend was told.

  /**
   * Marks up to `limit` connections (or only `connectionId`) consented before `consentedBefore` as told that their
   * consent ends soon, once per consent (a reconnect, which moves consented_at, makes them due again). Skips
   * `reauth_required` connections: they were told already, and worse. Oldest consent first.
   */
  async markReconsentDue(manager: EntityManager, consentedBefore: Date, limit: number, connectionId?: string): Promise<ReconsentDue[]> {
    const sql = markStatement({
      set: 'reconsent_due_sent_for = c.consented_at',
      // Not told about this consent yet, and consented before $2.
      pending: (row) => `${row}.reconsent_due_sent_for IS DISTINCT FROM ${row}.consented_at AND ${row}.consented_at < $2`,
      order: 'consented_at',
      returning: TOLD,
      only: connectionId === undefined ? undefined : '$3',
    });
    return manager.query(sql, connectionId === undefined ? [limit, consentedBefore] : [limit, consentedBefore, connectionId]);
  }

  /**
   * Marks up to `limit` connections (or only `connectionId`) lacking configured scopes as told so, once per consent
   * and set of missing scopes.
   */
  async markScopesOutdated(manager: EntityManager, limit: number, connectionId?: string): Promise<ScopesOutdated[]> {
    const sql = markStatement({
      set: 'scopes_outdated_sent_for = c.consented_at, scopes_outdated_sent_scopes = c.missing_scopes',
      // Lacking scopes, and not told about this consent with this set of missing scopes yet.
      pending: (row) =>
        `${row}.missing_scopes <> '{}' AND ` +
        `(${row}.scopes_outdated_sent_for, ${row}.scopes_outdated_sent_scopes) IS DISTINCT FROM (${row}.consented_at, ${row}.missing_scopes)`,
      order: 'id',
      returning: `${TOLD}, c.missing_scopes AS "missingScopes"`,
      only: connectionId === undefined ? undefined : '$2',
    });
    return manager.query(sql, connectionId === undefined ? [limit] : [limit, connectionId]);
  }

  /**
   * Marks up to `limit` connections as told that their consent ends soon (as markReconsentDue) and writes the event
   * `tell` makes of each, in one transaction: both commit or neither does. With `within`, only its connection, in its
   * transaction (a consent being stored). Answers how many were told.
   */
  tellReconsentDue(
    consentedBefore: Date,
    limit: number,
    now: Date,
    tell: (connection: ReconsentDue) => OutboxEvent,
    within?: { readonly manager: EntityManager; readonly connectionId: string },
  ): Promise<number> {
    return this.tellMarked(now, tell, within, (manager) => this.markReconsentDue(manager, consentedBefore, limit, within?.connectionId));
  }

  /** Marks up to `limit` connections as told that their grant lacks scopes (as markScopesOutdated), as tellReconsentDue does. */
  tellScopesOutdated(
    limit: number,
    now: Date,
    tell: (connection: ScopesOutdated) => OutboxEvent,
    within?: { readonly manager: EntityManager; readonly connectionId: string },
  ): Promise<number> {
    return this.tellMarked(now, tell, within, (manager) => this.markScopesOutdated(manager, limit, within?.connectionId));
  }

  /** Stores, in one transaction, what each distinct set of granted scopes lacks by `missingOf`; answers how many connections changed. */
  recomputeMissingScopes(missingOf: (granted: readonly string[]) => string[]): Promise<number> {
    return this.dataSource.transaction(async (manager) => {
      const sets = await this.grantedScopeSets(manager);
      return this.storeMissingScopes(
        manager,
        sets.map((granted) => ({ granted, missing: missingOf(granted) })),
      );
    });
  }

  /** Connections, `reauth_required` aside, whose consent was given before `consentedBefore`. */
  async countConsentedBefore(manager: EntityManager, consentedBefore: Date): Promise<number> {
    const rows: { count: string }[] = await manager.query(
      `SELECT count(*) AS count FROM connections WHERE consented_at < $1 AND status <> 'reauth_required'`,
      [consentedBefore],
    );
    return Number(rows[0].count);
  }

  /** Every distinct set of granted scopes: grants of one app have few, so the rule of what is missing runs once per set. */
  async grantedScopeSets(manager: EntityManager): Promise<string[][]> {
    const rows: { scopes: string[] }[] = await manager.query(`SELECT DISTINCT scopes FROM connections`);
    return rows.map((row) => row.scopes);
  }

  /** Stores each set's missing scopes on the connections granted exactly that set; answers how many changed. */
  async storeMissingScopes(manager: EntityManager, sets: readonly ScopeSet[]): Promise<number> {
    if (sets.length === 0) return 0;
    const rows: { count: string }[] = await manager.query(
      `WITH updated AS (
         UPDATE connections c SET missing_scopes = string_to_array(s.missing, ' ')
         FROM unnest($1::text[], $2::text[]) AS s(granted, missing)
         WHERE c.scopes = string_to_array(s.granted, ' ') AND c.missing_scopes IS DISTINCT FROM string_to_array(s.missing, ' ')
         RETURNING 1)
       SELECT count(*) AS count FROM updated`,
      [sets.map((set) => set.granted.join(' ')), sets.map((set) => set.missing.join(' '))],
    );
    return Number(rows[0].count);
  }

  /** The scopes the user's grant lacks, as stored; undefined without a connection. */
  async findMissingScopes(manager: EntityManager, userId: string): Promise<string[] | undefined> {
    const rows: { missing_scopes: string[] }[] = await manager.query(`SELECT missing_scopes FROM connections WHERE user_id = $1`, [userId]);
    return rows[0]?.missing_scopes;
  }

  // Refreshing.

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

  /** Stores one connection's new tokens as saveRefreshed does, in a statement shared with concurrent saves; false if its lease was lost. */
  saveOneRefreshed(write: RefreshedWrite): Promise<boolean> {
    return this.refreshedSaves.submit(write);
  }

  /**
   * Stores new token pairs, each only if its row still has the lease and version it was claimed with, hands those
   * leases back and schedules the next refreshes, in one statement; with events, in one transaction with them (an
   * event is written only for a row that was stored). Answers the ids stored: a missing id lost its lease.
   */
  saveRefreshed(batch: readonly RefreshedWrite[]): Promise<Set<string>> {
    return this.changing(
      batch.map((write) => write.claim.userId),
      this.writeRefreshed(batch),
    );
  }

  private async writeRefreshed(batch: readonly RefreshedWrite[]): Promise<Set<string>> {
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
  markReauthRequired(claim: ClaimedConnection, error: string, now: Date, events: readonly OutboxEvent[]): Promise<boolean> {
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
    return this.changing([claim.userId], this.writeUnderLease(sql, [claim.id, claim.leaseId, error, now], now, events));
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

  /** The user's connection's token state, in a statement shared with concurrent reads (every call as a user reads it). */
  async findTokenState(userId: string): Promise<TokenState | null> {
    return (await this.tokenStateReads.submit(userId)) ?? null;
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

  private async tellMarked<T>(
    now: Date,
    tell: (connection: T) => OutboxEvent,
    within: { readonly manager: EntityManager } | undefined,
    mark: (manager: EntityManager) => Promise<T[]>,
  ): Promise<number> {
    const work = async (manager: EntityManager): Promise<number> => {
      const marked = await mark(manager);
      for (const connection of marked) await this.outbox.enqueue(manager, tell(connection), now);
      return marked.length;
    };
    return within ? work(within.manager) : this.dataSource.transaction(work);
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

  /**
   * This replica's cache forgets the users once `write` has committed (or failed, which may still have committed), so
   * that what this replica answers next never predates its own write; other replicas hear of it from the triggers.
   */
  private changing<T>(userIds: readonly string[], write: Promise<T>): Promise<T> {
    return write.finally(() => {
      for (const userId of userIds) this.cache.forget(userId);
    });
  }

  private run<T = unknown>(sql: string, params: unknown[], manager?: EntityManager): Promise<StatementResult<T>> {
    return runStatement<T>(this.dataSource, sql, params, manager);
  }
}

/** The values of a consent both statements write, in their shared order: account, scopes, tokens, expiry, now, due, missing. */
function connectedParameters(values: ConnectedValues): unknown[] {
  return [
    values.atlassianAccountId,
    [...values.scopes],
    values.accessToken.ciphertext,
    values.accessToken.keyId,
    values.refreshToken.ciphertext,
    values.refreshToken.keyId,
    values.accessTokenExpiresAt,
    values.now,
    values.dueAt,
    [...values.missingScopes],
  ];
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

function difference(before: readonly string[], now: readonly AccessibleResource[]): ResourceChanges {
  const previous = new Set(before);
  const current = new Set(now.map((r) => r.id));
  return {
    added: [...current].filter((id) => !previous.has(id)).sort(),
    removed: [...previous].filter((id) => !current.has(id)).sort(),
  };
}
