import type { DataSource } from 'typeorm';
import type { ConnectionStatus } from '../connections/connection.entity.js';

export interface UnresolvedRefresh {
  readonly userId: string;
  readonly status: ConnectionStatus;
  readonly attemptedAt: Date;
  readonly consecutiveFailures: number;
}

export interface ConnectionStatusSnapshot {
  readonly byStatus: Readonly<Record<ConnectionStatus, number>>;
  /** The due time of the connection that has waited longest for its refresh; null when none is overdue. */
  readonly oldestOverdueAt: Date | null;
  readonly overdue: number;
  /** Active connections whose access token has already expired: the refresh job is not keeping up (or not running). */
  readonly expiredActive: number;
  readonly unresolvedCount: number;
  /** The oldest few, for the operator to look at. */
  readonly unresolved: readonly UnresolvedRefresh[];
}

/** The read-only queries of the `connections` command. */
export class ConnectionStatusRepository {
  constructor(private readonly dataSource: DataSource) {}

  /**
   * `unresolvedBefore`: a refresh presented before this whose answer was never stored (refresh_attempted_at is set
   * when a refresh starts and cleared when its answer is saved).
   */
  async snapshot(now: Date, unresolvedBefore: Date, examples: number): Promise<ConnectionStatusSnapshot> {
    const counts: { status: ConnectionStatus; count: number }[] = await this.dataSource.query(
      'SELECT status, count(*)::int AS count FROM connections GROUP BY status',
    );
    const [summary]: { oldest: Date | null; overdue: number; expired: number; unresolved: number }[] = await this.dataSource.query(
      `SELECT
         min(due_at) FILTER (WHERE due_at <= $1 AND status <> 'reauth_required') AS oldest,
         count(*) FILTER (WHERE due_at <= $1 AND status <> 'reauth_required')::int AS overdue,
         count(*) FILTER (WHERE status = 'active' AND access_token_expires_at <= $1)::int AS expired,
         count(*) FILTER (WHERE refresh_attempted_at < $2)::int AS unresolved
       FROM connections`,
      [now, unresolvedBefore],
    );
    const rows: { user_id: string; status: ConnectionStatus; refresh_attempted_at: Date; consecutive_failures: number }[] =
      await this.dataSource.query(
        `SELECT user_id, status, refresh_attempted_at, consecutive_failures FROM connections
         WHERE refresh_attempted_at < $1 ORDER BY refresh_attempted_at LIMIT $2`,
        [unresolvedBefore, examples],
      );
    const byStatus = { active: 0, refresh_failing: 0, reauth_required: 0 };
    for (const { status, count } of counts) byStatus[status] = count;
    return {
      byStatus,
      oldestOverdueAt: summary.oldest && new Date(summary.oldest),
      overdue: summary.overdue,
      expiredActive: summary.expired,
      unresolvedCount: summary.unresolved,
      unresolved: rows.map((r) => ({
        userId: r.user_id,
        status: r.status,
        attemptedAt: new Date(r.refresh_attempted_at),
        consecutiveFailures: r.consecutive_failures,
      })),
    };
  }
}
