import { Module } from '@nestjs/common';
import { ProductCallsModule } from '../product-calls/product-calls.module.js';
import { MathRandomSource, RandomSource } from '../refresh/timing.js';
import { JiraWebhookClient } from './jira-webhook.client.js';
import { JiraWebhookReceiver } from './jira-webhook.receiver.js';
import { JiraWebhooksController } from './jira-webhooks.controller.js';
import { JiraWebhookMetrics } from './jira-webhooks.metrics.js';
import { JiraWebhooksRepository } from './jira-webhooks.repository.js';
import { JiraWebhooksScheduler } from './jira-webhooks.scheduler.js';
import { JiraWebhooksService } from './jira-webhooks.service.js';

/**
 * Jira dynamic webhooks, the daemon's second job: the wanted state per user, registration and extension at Jira as the
 * user (through the product-call path and its rate-limit governor), and the receiver of Jira's signed deliveries.
 */
@Module({
  imports: [ProductCallsModule],
  controllers: [JiraWebhooksController],
  providers: [
    JiraWebhooksRepository,
    JiraWebhookClient,
    JiraWebhooksService,
    JiraWebhookReceiver,
    JiraWebhookMetrics,
    JiraWebhooksScheduler,
    { provide: RandomSource, useClass: MathRandomSource },
  ],
  exports: [JiraWebhooksService, JiraWebhooksRepository],
})
export class JiraWebhooksModule {}
