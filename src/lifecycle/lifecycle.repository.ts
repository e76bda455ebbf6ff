import { Injectable } from '@nestjs/common';
import type { EntityManager } from 'typeorm';

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

/**
 * The connection lifecycle's SQL on the connections table: the scopes grants lack, and (once per consent) the
 * events that tell the SaaS backend about them. Every method takes the EntityManager of its caller's transaction: the
 * caller writes each event in the transaction that marks its connection as told, so both commit or neither does.
 */
@Injectable()
export class LifecycleRepository {
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
}
