import { Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import type { AtlassianProduct } from '../atlassian/atlassian.client.js';
import type { Pause } from './pause-book.js';
import type { ScopeKind } from './pause-scopes.js';

interface PauseRow {
  scope: string;
  kind: ScopeKind;
  product: AtlassianProduct;
  reason: string | null;
  paused_until: Date;
}

/** atlassian_rate_limit_pauses: one row per paused scope, the pauses every replica honours. */
@Injectable()
export class RateLimitPausesRepository {
  constructor(private readonly dataSource: DataSource) {}

  /**
   * Records a pause in one statement: a longer pause of the same scope (taken by another replica meanwhile) is kept,
   * and pauses that have ended are dropped, so the table holds only what is in force.
   */
  async pause(pause: Pause, now: Date): Promise<void> {
    await this.dataSource.query(
      `WITH ended AS (DELETE FROM atlassian_rate_limit_pauses WHERE paused_until <= $6 AND scope <> $1)
       INSERT INTO atlassian_rate_limit_pauses AS p (scope, kind, product, reason, paused_until, paused_at)
       VALUES ($1, $2, $3, $4, $5, $6)
       ON CONFLICT (scope) DO UPDATE SET reason = EXCLUDED.reason, paused_until = EXCLUDED.paused_until, paused_at = EXCLUDED.paused_at
       WHERE p.paused_until < EXCLUDED.paused_until`,
      [pause.scope.key, pause.scope.kind, pause.scope.product, pause.reason, pause.until, now],
    );
  }

  /** The pauses still in force at `now`. */
  async findActive(now: Date): Promise<Pause[]> {
    const rows: PauseRow[] = await this.dataSource.query(
      `SELECT scope, kind, product, reason, paused_until FROM atlassian_rate_limit_pauses WHERE paused_until > $1`,
      [now],
    );
    return rows.map((row) => ({
      scope: { key: row.scope, kind: row.kind, product: row.product },
      reason: row.reason,
      until: new Date(row.paused_until),
    }));
  }
}
