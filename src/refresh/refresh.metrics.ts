import { performance } from 'node:perf_hooks';
import { Injectable, Logger } from '@nestjs/common';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { Clock } from '../common/clock.js';
import { AppConfig } from '../config/app-config.js';
import type { ConnectionStatus } from '../connection-store/connection.entity.js';
import { DECRYPTION_FAILURES, type DecryptionFailure } from '../crypto/token-cipher.js';
import { ConnectionsRepository, type ConnectionCounts } from '../connection-store/connections.repository.js';

const STATUSES: readonly ConnectionStatus[] = ['active', 'refresh_failing', 'reauth_required'];
/** Counting connections scans the table: a scrape reuses a count younger than this. */
const COUNTS_MAX_AGE_MS = 10_000;

/**
 * The refresh daemon's Prometheus metrics. Labels are outcomes and statuses only, never a user, connection or token.
 * Connection counts are read from the database when Prometheus scrapes, at most once per COUNTS_MAX_AGE_MS.
 */
@Injectable()
export class RefreshMetrics {
  private readonly logger = new Logger(RefreshMetrics.name);
  private readonly refreshes: Counter<'outcome'>;
  private readonly duration: Histogram<'outcome'>;
  private readonly decryptionFailures: Counter<'reason'>;
  readonly leasesRecovered: Counter;
  readonly lateRecoveries: Counter;
  readonly credentialsRejected: Gauge;
  private counts: { readonly at: number; readonly value: Promise<ConnectionCounts[]> } | null = null;

  constructor(
    registry: Registry,
    private readonly repository: ConnectionsRepository,
    private readonly clock: Clock,
    private readonly config: AppConfig,
  ) {
    const registers = [registry];
    this.refreshes = new Counter({
      name: 'atlassian_token_refreshes_total',
      help: 'Claimed refreshes by outcome: refreshed, failing, reauth_required, credentials_rejected, released, lease_lost, error',
      labelNames: ['outcome'],
      registers,
    });
    this.duration = new Histogram({
      name: 'atlassian_token_refresh_duration_seconds',
      help: 'Time from claim to outcome of one refresh (token call, encryption and write)',
      labelNames: ['outcome'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20],
      registers,
    });
    this.decryptionFailures = new Counter({
      name: 'atlassian_token_decryption_failures_total',
      help: 'Stored tokens this replica could not decrypt, by reason: unknown_key (not in its TOKEN_ENCRYPTION_KEYS), authentication_failed',
      labelNames: ['reason'],
      registers,
    });
    for (const reason of DECRYPTION_FAILURES) this.decryptionFailures.inc({ reason }, 0);
    this.leasesRecovered = new Counter({
      name: 'atlassian_token_refresh_leases_recovered_total',
      help: 'Connections claimed again after an earlier lease ended without its refresh being stored (a crash or stall)',
      registers,
    });
    this.lateRecoveries = new Counter({
      name: 'atlassian_token_refresh_late_recoveries_total',
      help: "Refresh tokens presented again more than Atlassian's 10-minute reuse leeway after an unanswered attempt",
      registers,
    });
    this.credentialsRejected = new Gauge({
      name: 'atlassian_client_credentials_rejected',
      help: '1 while Atlassian refuses the client credentials (401 access_denied) and refreshing is paused on this replica',
      registers,
    });
    this.credentialsRejected.set(0);
    // Gauges read in collect(), whose `this` is the gauge.
    const connectionCounts = () => this.connectionCounts();
    const secondsOverdue = async () => {
      const now = this.clock.now();
      const oldest = await this.repository.oldestDueAt(now).catch((error: unknown) => this.unreadable(error));
      return oldest ? Math.max(0, (now.getTime() - oldest.getTime()) / 1000) : 0;
    };
    new Gauge({
      name: 'atlassian_connections',
      help: 'Connections by status',
      labelNames: ['status'],
      registers,
      async collect() {
        const counts = await connectionCounts();
        for (const status of STATUSES) this.set({ status }, counts?.find((c) => c.status === status)?.count ?? 0);
      },
    });
    new Gauge({
      name: 'atlassian_access_tokens_expiring_soon',
      help: 'Stored access tokens that expire within REFRESH_LEAD_SECONDS (or have expired)',
      registers,
      async collect() {
        const counts = await connectionCounts();
        this.set((counts ?? []).filter((c) => c.status !== 'reauth_required').reduce((sum, c) => sum + c.expiringSoon, 0));
      },
    });
    new Gauge({
      name: 'atlassian_token_refresh_oldest_due_seconds',
      help: 'How long the connection waiting longest for its refresh has been due (0 when none is waiting)',
      registers,
      async collect() {
        this.set(await secondsOverdue());
      },
    });
  }

  /** Every outcome's series exists from the start, so increase() and rate() see the first one. */
  initOutcomes(outcomes: readonly string[]): void {
    for (const outcome of outcomes) {
      this.refreshes.inc({ outcome }, 0);
      this.duration.zero({ outcome });
    }
  }

  recordDecryptionFailure(reason: DecryptionFailure): void {
    this.decryptionFailures.inc({ reason });
  }

  recordRefresh(outcome: string, seconds: number): void {
    this.refreshes.inc({ outcome });
    this.duration.observe({ outcome }, seconds);
  }

  private connectionCounts(): Promise<ConnectionCounts[] | undefined> {
    const fresh = this.counts && performance.now() - this.counts.at < COUNTS_MAX_AGE_MS;
    if (!fresh) {
      const soon = new Date(this.clock.now().getTime() + this.config.refresh.leadSeconds * 1000);
      this.counts = { at: performance.now(), value: this.repository.countByStatus(soon) };
    }
    return this.counts!.value.catch((error: unknown) => {
      this.counts = null;
      return this.unreadable(error);
    });
  }

  private unreadable(error: unknown): undefined {
    this.logger.warn(`Connection metrics could not be read from the database: ${(error as Error).message}`);
    return undefined;
  }
}
