import { Injectable } from '@nestjs/common';
import type { EntityManager } from 'typeorm';

/** A grant's scopes and what they lack of the configuration, in the form stored for every connection with that grant. */
export interface ScopeSet {
  readonly granted: readonly string[];
  readonly missing: readonly string[];
}

/**
 * The connection lifecycle's SQL on the connections table: the scopes grants lack, and (once per consent) the
 * events that tell the SaaS backend about them. Every method takes the EntityManager of its caller's transaction.
 */
@Injectable()
export class LifecycleRepository {
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
