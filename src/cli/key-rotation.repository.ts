import type { DataSource } from 'typeorm';
import type { SealedValue } from '../crypto/token-cipher.js';

/** The tokens of one connection as read for re-encryption, with what the write will compare against. */
export interface StoredTokens {
  readonly id: string;
  readonly version: number;
  readonly accessToken: SealedValue | null;
  readonly refreshToken: SealedValue | null;
}

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

interface TokenRow {
  id: string;
  version: number;
  access_token_ciphertext: string | null;
  access_token_key_id: string | null;
  refresh_token_ciphertext: string | null;
  refresh_token_key_id: string | null;
}

const STALE = `(access_token_key_id <> $1 OR refresh_token_key_id <> $1)`;

/**
 * The SQL of `rotate-keys`. It never bumps `version`: the refresh job compares versions to know whether a token
 * changed, and re-encryption changes no token, so a refresh in flight must still be allowed to write its answer.
 */
export class KeyRotationRepository {
  constructor(private readonly dataSource: DataSource) {}

  async countStale(activeKeyId: string): Promise<StaleTokenCount> {
    const rows: { key_id: string; tokens: number; connections: number }[] = await this.dataSource.query(
      `SELECT key_id, count(*)::int AS tokens, count(DISTINCT id)::int AS connections FROM (
         SELECT id, access_token_key_id AS key_id FROM connections WHERE access_token_key_id <> $1
         UNION ALL
         SELECT id, refresh_token_key_id FROM connections WHERE refresh_token_key_id <> $1
       ) stale GROUP BY key_id ORDER BY key_id`,
      [activeKeyId],
    );
    const [{ connections }]: { connections: number }[] = await this.dataSource.query(
      `SELECT count(*)::int AS connections FROM connections WHERE ${STALE}`,
      [activeKeyId],
    );
    return { connections, tokensByKey: Object.fromEntries(rows.map((r) => [r.key_id, r.tokens])) };
  }

  /** The next `limit` connections after `afterId` (in id order) holding a token not under the active key. */
  async findStaleAfter(activeKeyId: string, afterId: string | null, limit: number): Promise<StoredTokens[]> {
    const rows: TokenRow[] = await this.dataSource.query(
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
      accessToken: sealed(r.access_token_ciphertext, r.access_token_key_id),
      refreshToken: sealed(r.refresh_token_ciphertext, r.refresh_token_key_id),
    }));
  }

  /**
   * Writes the re-encrypted tokens of a batch in one statement (one commit), each row only if nothing changed it
   * since it was read: same version (every token write bumps it) and same ciphertexts (in case one ever does not).
   * Returns the ids written; a row left out was changed meanwhile and keeps its newer value.
   */
  async replaceIfUnchanged(batch: readonly ResealedTokens[]): Promise<string[]> {
    if (batch.length === 0) return [];
    const column = <T>(pick: (r: ResealedTokens) => T): T[] => batch.map(pick);
    const rows = await this.run<{ id: string }>(
      `UPDATE connections c SET
         access_token_ciphertext = v.access_ciphertext, access_token_key_id = v.access_key_id,
         refresh_token_ciphertext = v.refresh_ciphertext, refresh_token_key_id = v.refresh_key_id
       FROM unnest($1::uuid[], $2::int[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[])
         AS v(id, version, read_access, read_refresh, access_ciphertext, access_key_id, refresh_ciphertext, refresh_key_id)
       WHERE c.id = v.id AND c.version = v.version
         AND c.access_token_ciphertext IS NOT DISTINCT FROM v.read_access
         AND c.refresh_token_ciphertext IS NOT DISTINCT FROM v.read_refresh
       RETURNING c.id`,
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

  /** Rows the same way on `pg` and on embedded PGlite (their raw answers to UPDATE … RETURNING differ). */
  private async run<T>(sql: string, params: unknown[]): Promise<T[]> {
    const runner = this.dataSource.createQueryRunner();
    try {
      const result = await runner.query(sql, params, true);
      return (result.records ?? []) as T[];
    } finally {
      await runner.release();
    }
  }
}

function sealed(ciphertext: string | null, keyId: string | null): SealedValue | null {
  return ciphertext !== null && keyId !== null ? { ciphertext, keyId } : null;
}
