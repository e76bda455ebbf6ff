import { Injectable, Logger, type OnApplicationBootstrap, type OnModuleDestroy } from '@nestjs/common';
import { SchedulerRegistry } from '@nestjs/schedule';
import { AppConfig } from '../config/app-config.js';
import { RefreshService, type RefreshCycleReport } from './refresh.service.js';

export const REFRESH_INTERVAL_NAME = 'refresh-due-connections';

/** Every REFRESH_INTERVAL_SECONDS: hands the due connections to the refresh service and logs what happened. */
@Injectable()
export class RefreshScheduler implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly logger = new Logger(RefreshScheduler.name);

  constructor(
    private readonly schedulerRegistry: SchedulerRegistry,
    private readonly refresh: RefreshService,
    private readonly config: AppConfig,
  ) {}

  onApplicationBootstrap(): void {
    const handle = setInterval(() => void this.tick(), this.config.refresh.intervalSeconds * 1000);
    this.schedulerRegistry.addInterval(REFRESH_INTERVAL_NAME, handle);
  }

  /** First thing on shutdown: no new cycle starts (the service then finishes or hands back what is in flight). */
  onModuleDestroy(): void {
    if (this.schedulerRegistry.doesExist('interval', REFRESH_INTERVAL_NAME)) this.schedulerRegistry.deleteInterval(REFRESH_INTERVAL_NAME);
  }

  async tick(): Promise<void> {
    let report: RefreshCycleReport;
    try {
      report = await this.refresh.runDueRefreshes();
    } catch (error) {
      this.logger.error(`Refresh cycle failed: ${(error as Error).message}`);
      return;
    }
    if (report.skipped) {
      this.logger.debug(`Refresh cycle skipped (${report.skipped})`);
      return;
    }
    const { skipped: _, durationMs, ...counts } = report;
    const message = `Refresh cycle: ${Object.entries(counts)
      .map(([name, count]) => `${name} ${count}`)
      .join(', ')} in ${durationMs} ms`;
    if (report.claimed > 0) this.logger.log(message);
    else this.logger.debug(message);
  }
}
