import { Injectable } from '@nestjs/common';
import type { EntityManager } from 'typeorm';
import type { AccessibleResource } from '../atlassian/atlassian.types.js';
import type { SealedValue } from '../crypto/token-cipher.js';

/** Everything a fresh consent sets on a connection; the tokens are already sealed for its row. */
export interface ConnectedValues {
  readonly userId: string;
  readonly atlassianAccountId: string;
  readonly scopes: readonly string[];
  readonly accessToken: SealedValue;
  readonly refreshToken: SealedValue;
  readonly accessTokenExpiresAt: Date;
  readonly dueAt: Date;
  readonly now: Date;
}

/**
 * The connect side of the connections table (the refresh daemon has its own repository on it). Every method takes
 * the EntityManager of the caller's transaction: a consent is stored, with its sites and its webhook, all at once.
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
         consecutive_failures, resources_fetched_at, created_at, updated_at)
       VALUES ($1, $2, $3, 'active', $4::text[], $5, $6, $7, $8, $9, $10, $10, 1, $11, 0, $10, $10, $10)
       ON CONFLICT (user_id) DO NOTHING
       RETURNING id`,
      [
        id,
        values.userId,
        values.atlassianAccountId,
        [...values.scopes],
        values.accessToken.ciphertext,
        values.accessToken.keyId,
        values.refreshToken.ciphertext,
        values.refreshToken.keyId,
        values.accessTokenExpiresAt,
        values.now,
        values.dueAt,
      ],
    );
    return rows.length === 1;
  }

  /**
   * Replaces the tokens of an existing connection and starts its refresh bookkeeping afresh. Bumping the version and
   * clearing the lease makes a refresh of the old tokens that is still in flight fail its compare-and-swap.
   */
  async replaceConnected(manager: EntityManager, id: string, values: ConnectedValues): Promise<number> {
    const result: [{ version: number }[], number] = await manager.query(
      `UPDATE connections SET
         atlassian_account_id = $2, status = 'active', scopes = $3::text[],
         access_token_ciphertext = $4, access_token_key_id = $5, refresh_token_ciphertext = $6, refresh_token_key_id = $7,
         access_token_expires_at = $8, refresh_token_issued_at = $9, last_refreshed_at = $9, version = version + 1, due_at = $10,
         lease_id = NULL, lease_owner = NULL, lease_expires_at = NULL, refresh_attempted_at = NULL,
         consecutive_failures = 0, last_error = NULL, last_error_at = NULL, resources_fetched_at = $9, updated_at = $9
       WHERE id = $1
       RETURNING version`,
      [
        id,
        values.atlassianAccountId,
        [...values.scopes],
        values.accessToken.ciphertext,
        values.accessToken.keyId,
        values.refreshToken.ciphertext,
        values.refreshToken.keyId,
        values.accessTokenExpiresAt,
        values.now,
        values.dueAt,
      ],
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
}
