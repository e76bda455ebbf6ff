import { Injectable } from '@nestjs/common';
import { Clock } from '../common/clock.js';
import type { ConnectionStatus } from '../connection-store/connection.entity.js';
import { REFRESH_POLICY } from './refresh.policy.js';
import { ConnectionsRepository, type UnresolvedRefresh } from '../connection-store/connections.repository.js';

/** How the connections are doing at one moment, for an operator. */
export interface RefreshStatusSnapshot {
  readonly at: Date;
  readonly byStatus: Readonly<Record<ConnectionStatus, number>>;
  /** The due time of the connection that has waited longest for its refresh; null when none is overdue. */
  readonly oldestOverdueAt: Date | null;
  readonly overdue: number;
  /** Active connections whose access token has already expired: the refresh job is not keeping up (or not running). */
  readonly expiredActive: number;
  /** Refreshes presented longer ago than Atlassian's reuse leeway whose answer was never stored: past recovery if it was lost. */
  readonly unresolvedCount: number;
  /** The oldest few of them. */
  readonly unresolved: readonly UnresolvedRefresh[];
}

/** The refresh job's state as an operator asks for it: the same counts as the metrics, and what the leeway makes urgent. */
@Injectable()
export class RefreshStatusService {
  constructor(
    private readonly repository: ConnectionsRepository,
    private readonly clock: Clock,
  ) {}

  async snapshot(examples: number): Promise<RefreshStatusSnapshot> {
    const at = this.clock.now();
    const unresolvedBefore = new Date(at.getTime() - REFRESH_POLICY.reuseLeewayMs);
    // "Expiring" by now means expired: for active connections, tokens the job should have refreshed already.
    const counts = await this.repository.countByStatus(at);
    const backlog = await this.repository.backlog(at, unresolvedBefore);
    const unresolved = await this.repository.findUnresolved(unresolvedBefore, examples);
    const byStatus: Record<ConnectionStatus, number> = { active: 0, refresh_failing: 0, reauth_required: 0 };
    for (const { status, count } of counts) byStatus[status] = count;
    return {
      at,
      byStatus,
      oldestOverdueAt: backlog.oldestDueAt,
      overdue: backlog.overdue,
      expiredActive: counts.find((c) => c.status === 'active')?.expiringSoon ?? 0,
      unresolvedCount: backlog.unresolved,
      unresolved,
    };
  }
}
