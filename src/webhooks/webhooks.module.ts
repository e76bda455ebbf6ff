import { Global, Module } from '@nestjs/common';
import { OutboxRepository } from './outbox.repository.js';
import { WebhookDeliveryRepository } from './webhook-delivery.repository.js';
import { WebhookDeliveryScheduler } from './webhook-delivery.scheduler.js';
import { WebhookDeliveryService } from './webhook-delivery.service.js';
import { DEFAULT_WEBHOOK_DELIVERY_OPTIONS, WEBHOOK_DELIVERY_OPTIONS } from './webhook-delivery.options.js';
import { MathRandomWebhookJitter, WebhookJitter, WebhookRetryPolicy } from './webhook-retry.policy.js';
import { WebhookMetrics } from './webhook.metrics.js';
import { WebhookSender } from './webhook.sender.js';

/** The outbox (written by whoever changes a connection) and its delivery loop. */
@Global()
@Module({
  providers: [
    OutboxRepository,
    WebhookDeliveryRepository,
    WebhookDeliveryService,
    WebhookDeliveryScheduler,
    WebhookRetryPolicy,
    WebhookSender,
    WebhookMetrics,
    { provide: WebhookJitter, useClass: MathRandomWebhookJitter },
    { provide: WEBHOOK_DELIVERY_OPTIONS, useValue: DEFAULT_WEBHOOK_DELIVERY_OPTIONS },
  ],
  exports: [OutboxRepository],
})
export class WebhooksModule {}
