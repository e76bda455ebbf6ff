import { Injectable, Logger } from '@nestjs/common';
import { Gauge, Registry } from 'prom-client';
import { Clock } from '../common/clock.js';
import { type OutboxBacklog, WebhookDeliveryRepository } from './webhook-delivery.repository.js';

/**
 * The webhook outbox's backlog as Prometheus gauges, read from the database when Prometheus scrapes: one query for
 * the three (it counts only undelivered events, through the outbox's partial index).
 */
@Injectable()
export class WebhookMetrics {
  private readonly logger = new Logger(WebhookMetrics.name);
  private reading: Promise<OutboxBacklog | undefined> | null = null;

  constructor(
    registry: Registry,
    private readonly repository: WebhookDeliveryRepository,
    private readonly clock: Clock,
  ) {
    const registers = [registry];
    // Gauges read in collect(), whose `this` is the gauge.
    const backlog = () => this.backlog();
    const secondsSince = (at: Date) => Math.max(0, (this.clock.now().getTime() - at.getTime()) / 1000);
    new Gauge({
      name: 'atlassian_webhook_events_pending',
      help: 'Webhook events not delivered yet and still being retried (all of them while WEBHOOK_URL is unset)',
      registers,
      async collect() {
        this.set((await backlog())?.pending ?? 0);
      },
    });
    new Gauge({
      name: 'atlassian_webhook_events_given_up',
      help: 'Webhook events given up after retrying for their whole retry period, never delivered',
      registers,
      async collect() {
        this.set((await backlog())?.dead ?? 0);
      },
    });
    new Gauge({
      name: 'atlassian_webhook_oldest_pending_seconds',
      help: 'Age of the oldest webhook event still being retried (0 when none is pending)',
      registers,
      async collect() {
        const oldest = (await backlog())?.oldestPendingAt;
        this.set(oldest ? secondsSince(oldest) : 0);
      },
    });
  }

  /** The gauges of one scrape are collected together and share the query in flight. */
  private backlog(): Promise<OutboxBacklog | undefined> {
    this.reading ??= this.repository
      .backlog()
      .catch((error: unknown) => {
        this.logger.warn(`Webhook metrics could not be read from the database: ${(error as Error).message}`);
        return undefined;
      })
      .finally(() => {
        this.reading = null;
      });
    return this.reading;
  }
}
