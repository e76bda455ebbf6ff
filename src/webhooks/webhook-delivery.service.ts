import { Inject, Injectable, Logger } from '@nestjs/common';
import { Clock } from '../common/clock.js';
import { shortId } from '../logging/redact.js';
import { type ClaimedWebhook, WebhookDeliveryRepository } from './webhook-delivery.repository.js';
import { WEBHOOK_DELIVERY_OPTIONS, type WebhookDeliveryOptions } from './webhook-delivery.options.js';
import { WebhookRetryPolicy } from './webhook-retry.policy.js';
import { WebhookSender } from './webhook.sender.js';

export interface DeliveryCounts {
  readonly delivered: number;
  readonly retrying: number;
  readonly dead: number;
  /** Claimed but handed back unsent because the service is stopping. */
  readonly handedBack: number;
}

type Outcome = keyof DeliveryCounts;

const NOTHING: DeliveryCounts = { delivered: 0, retrying: 0, dead: 0, handedBack: 0 };

/**
 * Delivers due outbox events at least once: claim a batch, POST each (concurrently, each in its own try/catch),
 * record what happened. It runs on its own loop, so a slow or dead receiver delays only webhooks.
 */
@Injectable()
export class WebhookDeliveryService {
  private readonly logger = new Logger(WebhookDeliveryService.name);

  constructor(
    private readonly repository: WebhookDeliveryRepository,
    private readonly sender: WebhookSender,
    private readonly retry: WebhookRetryPolicy,
    private readonly clock: Clock,
    @Inject(WEBHOOK_DELIVERY_OPTIONS) private readonly options: WebhookDeliveryOptions,
  ) {}

  get enabled(): boolean {
    return this.sender.enabled;
  }

  /** One pass over the events due now. Without WEBHOOK_URL it does nothing: events stay pending in the outbox. */
  async deliverDue(stopping: AbortSignal = new AbortController().signal): Promise<DeliveryCounts> {
    if (!this.enabled || stopping.aborted) return NOTHING;
    const now = this.clock.now();
    const claimed = await this.repository.claimDue(now, new Date(now.getTime() + this.options.leaseMs), this.options.batchSize);
    if (claimed.length === 0) return NOTHING;

    const outcomes = await Promise.all(claimed.map((event) => this.deliverOne(event, stopping)));
    const counts = { ...NOTHING };
    for (const outcome of outcomes) if (outcome) counts[outcome] += 1;
    this.logger.log(
      `Webhooks: ${counts.delivered} delivered, ${counts.retrying} to retry, ${counts.dead} given up, ${counts.handedBack} handed back`,
    );
    return counts;
  }

  /** Never throws: one event's failure to record is logged and the lease brings it back later. */
  private async deliverOne(event: ClaimedWebhook, stopping: AbortSignal): Promise<Outcome | null> {
    try {
      if (this.retry.expired(event.createdAt, this.clock.now())) {
        await this.repository.markDead(event.id, 'not delivered within the give-up window; not sent', this.clock.now(), false);
        this.logger.error(`Webhook ${shortId(event.id)} (${event.type}) is too old to send; given up after ${event.attempts} attempts`);
        return 'dead';
      }
      const result = await this.sender.send(event, stopping);
      const now = this.clock.now();
      if (result.delivered) {
        await this.repository.markDelivered(event.id, now);
        this.logger.debug(`Webhook ${shortId(event.id)} (${event.type}) delivered: HTTP ${result.status}`);
        return 'delivered';
      }
      if (result.interrupted) {
        await this.repository.releaseClaim(event.id, now);
        return 'handedBack';
      }
      const failures = event.attempts + 1;
      const nextAttemptAt = this.retry.nextAttemptAt(failures, event.createdAt, now);
      if (!nextAttemptAt) {
        await this.repository.markDead(event.id, result.reason, now, true);
        this.logger.error(`Webhook ${shortId(event.id)} (${event.type}) given up after ${failures} attempts; last error: ${result.reason}`);
        return 'dead';
      }
      await this.repository.scheduleRetry(event.id, result.reason, nextAttemptAt);
      this.logger.debug(
        `Webhook ${shortId(event.id)} (${event.type}) attempt ${failures} failed (${result.reason}); next at ${nextAttemptAt.toISOString()}`,
      );
      return 'retrying';
    } catch (error) {
      this.logger.warn(`Webhook ${shortId(event.id)}: could not record the delivery outcome (${(error as Error).message})`);
      return null;
    }
  }
}
