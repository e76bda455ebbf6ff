import { Injectable, Logger, type OnApplicationBootstrap, type OnModuleDestroy } from '@nestjs/common';
import { SchedulerRegistry } from '@nestjs/schedule';
import { AppConfig } from '../config/app-config.js';
import { JiraWebhooksService } from './jira-webhooks.service.js';

export const JIRA_WEBHOOKS_INTERVAL_NAME = 'jira-webhook-passes';

/** Every REFRESH_INTERVAL_SECONDS: hands the connections whose webhooks are due to the service and logs what happened. */
@Injectable()
export class JiraWebhooksScheduler implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly logger = new Logger(JiraWebhooksScheduler.name);
  private running = false;

  constructor(
    private readonly schedulerRegistry: SchedulerRegistry,
    private readonly webhooks: JiraWebhooksService,
    private readonly config: AppConfig,
  ) {}

  onApplicationBootstrap(): void {
    const handle = setInterval(() => void this.tick(), this.config.refresh.intervalSeconds * 1000);
    this.schedulerRegistry.addInterval(JIRA_WEBHOOKS_INTERVAL_NAME, handle);
  }

  onModuleDestroy(): void {
    if (this.schedulerRegistry.doesExist('interval', JIRA_WEBHOOKS_INTERVAL_NAME))
      this.schedulerRegistry.deleteInterval(JIRA_WEBHOOKS_INTERVAL_NAME);
  }

  async tick(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      const report = await this.webhooks.runDuePasses();
      const message = `Jira webhook passes: claimed ${report.claimed}, failed ${report.failed}, lease lost ${report.leaseLost}, deliveries forgotten ${report.deliveriesForgotten}`;
      if (report.claimed > 0) this.logger.log(message);
      else this.logger.debug(message);
    } catch (error) {
      this.logger.error(`Jira webhook pass failed: ${(error as Error).message}`);
    } finally {
      this.running = false;
    }
  }
}
