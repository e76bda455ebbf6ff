import { Injectable } from '@nestjs/common';
import type { EntityManager } from 'typeorm';
import type { AccessibleResource } from '../atlassian/atlassian.types.js';
import { type SealedValue, storedSealedValue } from '../crypto/token-cipher.js';
import type { ResourceChange } from './accessible-resource-change.entity.js';
import type { ConnectionStatus } from './connection.entity.js';
import { preparedRead } from '../database/prepared-read.js';

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

/** A connection locked for replacing its sites: which sites it has now. */
export interface LockedResources {
  readonly connectionId: string;
  readonly fetchedAt: Date | null;
  readonly cloudIds: string[];
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

/**
 * The connections table and its sites, apart from refreshing (the refresh daemon has its own repository on them).
 * Every method takes an EntityManager: the caller's transaction (a consent is stored, with its sites and its webhook,
 * all at once), or the data source's manager for a single read.
 */
@Injectable()
export class ConnectionsRepository {
  /** The id of the user's connection, locked until the transaction ends. */
  async lockByUserId(manager: EntityManager, userId: string): Promise<string | undefined> {
    const rows: { id: string }[] = await manager.query(`SELECT id FROM connections WHERE user_id = $1 FOR UPDATE`, [userId]);
    return rows[0]?.id;
  }

  /**
   * Inserts the connection under `id`, unless the user got one meanwhile (another callback committed first):
   * then nothing is written and the answer is false.
   */
  async insertConnected(manager: EntityManager, id: string, values: ConnectedValues): Promise<boolean> {
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
  async replaceConnected(manager: EntityManager, id: string, values: ConnectedValues): Promise<number> {
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
   * Deletes the user's connection; its sites and their history go with it (ON DELETE CASCADE). Wrapped in a SELECT
   * because TypeORM answers a bare DELETE differently on `pg` and on embedded PGlite.
   */
  async deleteByUserId(manager: EntityManager, userId: string): Promise<{ atlassianAccountId: string } | undefined> {
    const rows: { atlassianAccountId: string }[] = await manager.query(
      `WITH deleted AS (DELETE FROM connections WHERE user_id = $1 RETURNING atlassian_account_id)
       SELECT atlassian_account_id AS "atlassianAccountId" FROM deleted`,
      [userId],
    );
    return rows[0];
  }

  /**
   * The connections' status and sites, for several users in one prepared statement: this is the API's most frequent
   * read, and concurrent requests share it. Users without a connection are absent from the map.
   */
  async findResources(manager: EntityManager, userIds: readonly string[]): Promise<Map<string, StoredResources>> {
    const rows = await preparedRead<StoredResources & { userId: string }>(manager, 'connections_find_resources', FIND_RESOURCES_SQL, [
      userIds,
    ]);
    return new Map(rows.map(({ userId, ...stored }) => [userId, stored]));
  }

  /** Locks the user's connection until the transaction ends, so two re-reads of its sites are stored one after the other. */
  async lockResources(manager: EntityManager, userId: string): Promise<LockedResources | undefined> {
    const rows: LockedResources[] = await manager.query(
      `SELECT c.id AS "connectionId", c.resources_fetched_at AS "fetchedAt",
         ARRAY(SELECT r.cloud_id FROM accessible_resources r WHERE r.connection_id = c.id) AS "cloudIds"
       FROM connections c WHERE c.user_id = $1 FOR UPDATE`,
      [userId],
    );
    return rows[0];
  }

  async markResourcesFetched(manager: EntityManager, connectionId: string, at: Date): Promise<void> {
    await manager.query(`UPDATE connections SET resources_fetched_at = $2, updated_at = $2 WHERE id = $1`, [connectionId, at]);
  }

  async recordResourceChanges(
    manager: EntityManager,
    connectionId: string,
    changes: readonly { cloudId: string; change: ResourceChange }[],
    at: Date,
  ): Promise<void> {
    if (changes.length === 0) return;
    await manager.query(
      `INSERT INTO accessible_resource_changes (connection_id, cloud_id, change, at)
       SELECT $1, c.cloud_id, c.change, $4 FROM unnest($2::text[], $3::text[]) AS c(cloud_id, change)`,
      [connectionId, changes.map((c) => c.cloudId), changes.map((c) => c.change), at],
    );
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

  /** For each (user, site): the user's connection's status and whether it lists the site; undefined without a connection. */
  async findSiteAccess(manager: EntityManager, checks: readonly SiteCheck[]): Promise<(SiteAccess | undefined)[]> {
    const rows = await preparedRead<SiteAccess & { index: number }>(manager, 'connections_find_site_access', FIND_SITE_ACCESS_SQL, [
      checks.map((check) => check.userId),
      checks.map((check) => check.cloudId),
    ]);
    const found: (SiteAccess | undefined)[] = checks.map(() => undefined);
    for (const { index, ...access } of rows) found[index - 1] = access;
    return found;
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
