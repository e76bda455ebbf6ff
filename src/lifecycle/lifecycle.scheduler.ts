import { Injectable, Logger, type OnApplicationBootstrap, type OnModuleDestroy } from '@nestjs/common';
import { SchedulerRegistry } from '@nestjs/schedule';
import { AppConfig } from '../config/app-config.js';
import { LifecycleService, type LifecycleReport } from './lifecycle.service.js';

export const LIFECYCLE_INTERVAL_NAME = 'connection-lifecycle-checks';

/**
 * At start, brings every connection's missing scopes up to this replica's ATLASSIAN_SCOPES and sends what is due; then
 * every REFRESH_INTERVAL_SECONDS, sends what fell due since. Checks never overlap on a replica.
 */
@Injectable()
export class LifecycleScheduler implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly logger = new Logger(LifecycleScheduler.name);
  private running: Promise<void> | null = null;

  constructor(
    private readonly schedulerRegistry: SchedulerRegistry,
    private readonly lifecycle: LifecycleService,
    private readonly config: AppConfig,
  ) {}

  onApplicationBootstrap(): void {
    // In the background: the first check after a change of ATLASSIAN_SCOPES concerns every connection, and must not
    // hold up the start.
    void this.run(() => this.startUp());
    const handle = setInterval(() => void this.tick(), this.config.refresh.intervalSeconds * 1000);
    this.schedulerRegistry.addInterval(LIFECYCLE_INTERVAL_NAME, handle);
  }

  /** No new check starts; the one running finishes before the database closes. */
  onModuleDestroy(): Promise<void> {
    if (this.schedulerRegistry.doesExist('interval', LIFECYCLE_INTERVAL_NAME))
      this.schedulerRegistry.deleteInterval(LIFECYCLE_INTERVAL_NAME);
    return this.idle();
  }

  /** One check; if one is already running (the start's, or the previous tick's), that one. */
  tick(): Promise<void> {
    return this.run(() => this.check());
  }

  /** Settles once no check is running. */
  idle(): Promise<void> {
    return this.running ?? Promise.resolve();
  }

  private run(work: () => Promise<void>): Promise<void> {
    this.running ??= work().finally(() => {
      this.running = null;
    });
    return this.running;
  }

  private async startUp(): Promise<void> {
    try {
      await this.lifecycle.recomputeMissingScopes();
    } catch (error) {
      this.logger.error(`Recomputing missing scopes at start failed: ${(error as Error).message}`);
    }
    await this.check();
  }

  private async check(): Promise<void> {
    let report: LifecycleReport;
    try {
      report = await this.lifecycle.sendDueEvents();
    } catch (error) {
      this.logger.error(`Connection lifecycle check failed: ${(error as Error).message}`);
      return;
    }
    const message = `Connection lifecycle check: reconsent_due ${report.reconsentDue}, scopes_outdated ${report.scopesOutdated}`;
    if (report.reconsentDue + report.scopesOutdated > 0) this.logger.log(message);
    else this.logger.debug(message);
  }
}
