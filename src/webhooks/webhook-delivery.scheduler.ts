import { Inject, Injectable, Logger, type OnApplicationBootstrap, type OnModuleDestroy } from '@nestjs/common';
import { SchedulerRegistry } from '@nestjs/schedule';
import { type DeliveryCounts, WebhookDeliveryService } from './webhook-delivery.service.js';
import { WEBHOOK_DELIVERY_OPTIONS, type WebhookDeliveryOptions } from './webhook-delivery.options.js';

export const WEBHOOK_DELIVERY_INTERVAL = 'webhook-delivery';

/**
 * Runs a delivery pass every couple of seconds, one at a time per replica, only when WEBHOOK_URL is set.
 * On shutdown it stops ticking, aborts sends in flight (their events are handed back, due at once, for
 * this or another replica) and waits for the pass to record that before the database closes.
 */
@Injectable()
export class WebhookDeliveryScheduler implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly logger = new Logger(WebhookDeliveryScheduler.name);
  private readonly stopping = new AbortController();
  private running: Promise<DeliveryCounts | null> | null = null;

  constructor(
    private readonly delivery: WebhookDeliveryService,
    private readonly registry: SchedulerRegistry,
    @Inject(WEBHOOK_DELIVERY_OPTIONS) private readonly options: WebhookDeliveryOptions,
  ) {}

  onApplicationBootstrap(): void {
    if (!this.delivery.enabled) {
      this.logger.log('WEBHOOK_URL is not set: connection events are recorded in the outbox but not sent');
      return;
    }
    this.registry.addInterval(
      WEBHOOK_DELIVERY_INTERVAL,
      setInterval(() => void this.tick(), this.options.intervalMs),
    );
  }

  /** One delivery pass; if one is already running, that pass (ticks never overlap on a replica). */
  tick(): Promise<DeliveryCounts | null> {
    if (this.stopping.signal.aborted) return Promise.resolve(null);
    this.running ??= this.delivery
      .deliverDue(this.stopping.signal)
      .catch((error: unknown) => {
        this.logger.warn(`Webhook delivery pass failed: ${(error as Error).message}`);
        return null;
      })
      .finally(() => {
        this.running = null;
      });
    return this.running;
  }

  async onModuleDestroy(): Promise<void> {
    if (this.registry.doesExist('interval', WEBHOOK_DELIVERY_INTERVAL)) this.registry.deleteInterval(WEBHOOK_DELIVERY_INTERVAL);
    this.stopping.abort();
    await this.running;
  }
}
