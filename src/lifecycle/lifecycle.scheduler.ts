import { Injectable, Logger, type OnApplicationBootstrap, type OnModuleDestroy } from '@nestjs/common';
import { SchedulerRegistry } from '@nestjs/schedule';
import { AppConfig } from '../config/app-config.js';
import { LifecycleService, type LifecycleReport } from './lifecycle.service.js';

export const LIFECYCLE_INTERVAL_NAME = 'connection-lifecycle-checks';

/**
 * At start, brings every connection's missing scopes up to this replica's ATLASSIAN_SCOPES and sends what is due; then
 * every REFRESH_INTERVAL_SECONDS, sends what fell due since. Ticks never overlap on a replica.
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

  async onApplicationBootstrap(): Promise<void> {
    try {
      await this.lifecycle.recomputeMissingScopes();
    } catch (error) {
      this.logger.error(`Recomputing missing scopes at start failed: ${(error as Error).message}`);
    }
    await this.tick();
    const handle = setInterval(() => void this.tick(), this.config.refresh.intervalSeconds * 1000);
    this.schedulerRegistry.addInterval(LIFECYCLE_INTERVAL_NAME, handle);
  }

  onModuleDestroy(): Promise<void> | undefined {
    if (this.schedulerRegistry.doesExist('interval', LIFECYCLE_INTERVAL_NAME))
      this.schedulerRegistry.deleteInterval(LIFECYCLE_INTERVAL_NAME);
    return this.running ?? undefined;
  }

  /** One check; if one is already running, that one. */
  tick(): Promise<void> {
    this.running ??= this.lifecycle
      .sendDueEvents()
      .then((report) => this.log(report))
      .catch((error: unknown) => this.logger.error(`Connection lifecycle check failed: ${(error as Error).message}`))
      .finally(() => {
        this.running = null;
      });
    return this.running;
  }

  private log(report: LifecycleReport): void {
    const message = `Connection lifecycle check: reconsent_due ${report.reconsentDue}, scopes_outdated ${report.scopesOutdated}`;
    if (report.reconsentDue + report.scopesOutdated > 0) this.logger.log(message);
    else this.logger.debug(message);
  }
}
