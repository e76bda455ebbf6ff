import { performance } from 'node:perf_hooks';
import { Injectable, Logger } from '@nestjs/common';
import { Counter, Gauge, Registry } from 'prom-client';
import type { RegistrationStatus } from './jira-webhook.entities.js';
import { JiraWebhooksRepository, type RegistrationCounts } from './jira-webhooks.repository.js';

const STATUSES: readonly RegistrationStatus[] = ['active', 'failing', 'paused', 'removed'];
export const EXTENSION_OUTCOMES = ['extended', 'failed'] as const;
export const DELIVERY_OUTCOMES = ['accepted', 'duplicate', 'rejected', 'unknown'] as const;
export type ExtensionOutcome = (typeof EXTENSION_OUTCOMES)[number];
export type DeliveryOutcome = (typeof DELIVERY_OUTCOMES)[number];
/** Counting registrations scans their table: a scrape reuses a count younger than this. */
const COUNTS_MAX_AGE_MS = 10_000;

/** Jira webhooks' Prometheus metrics. Labels are statuses and outcomes only, never a user, site or webhook id. */
@Injectable()
export class JiraWebhookMetrics {
  private readonly logger = new Logger(JiraWebhookMetrics.name);
  private readonly extensions: Counter<'outcome'>;
  private readonly deliveries: Counter<'outcome'>;
  private counts: { readonly at: number; readonly value: Promise<RegistrationCounts> } | null = null;

  constructor(
    registry: Registry,
    private readonly repository: JiraWebhooksRepository,
  ) {
    const registers = [registry];
    this.extensions = new Counter({
      name: 'jira_webhook_extensions_total',
      help: 'Registrations extended at Jira (PUT /webhook/refresh), by outcome: extended, failed',
      labelNames: ['outcome'],
      registers,
    });
    for (const outcome of EXTENSION_OUTCOMES) this.extensions.inc({ outcome }, 0);
    this.deliveries = new Counter({
      name: 'jira_webhook_deliveries_total',
      help: 'Deliveries from Jira by outcome: accepted, duplicate (a retry already accepted), rejected (401), unknown (no registration of ours)',
      labelNames: ['outcome'],
      registers,
    });
    for (const outcome of DELIVERY_OUTCOMES) this.deliveries.inc({ outcome }, 0);
    // Gauges read in collect(), whose `this` is the gauge.
    const registrationCounts = () => this.registrationCounts();
    new Gauge({
      name: 'jira_webhook_registrations',
      help: 'Jira webhook registrations by status: active, failing, paused (the grant is gone), removed (deletion at Jira pending)',
      labelNames: ['status'],
      registers,
      async collect() {
        const counts = await registrationCounts();
        for (const status of STATUSES) this.set({ status }, counts?.byStatus.get(status) ?? 0);
      },
    });
    new Gauge({
      name: 'jira_webhook_soonest_expiry_timestamp_seconds',
      help: 'The soonest expirationDate of an active or failing registration, as Unix time (0 when there is none)',
      registers,
      async collect() {
        const soonest = (await registrationCounts())?.soonestExpiry;
        this.set(soonest ? soonest.getTime() / 1000 : 0);
      },
    });
  }

  recordExtensions(outcome: ExtensionOutcome, count: number): void {
    this.extensions.inc({ outcome }, count);
  }

  recordDelivery(outcome: DeliveryOutcome): void {
    this.deliveries.inc({ outcome });
  }

  private registrationCounts(): Promise<RegistrationCounts | undefined> {
    const fresh = this.counts && performance.now() - this.counts.at < COUNTS_MAX_AGE_MS;
    if (!fresh) this.counts = { at: performance.now(), value: this.repository.counts() };
    return this.counts!.value.catch((error: unknown) => {
      this.counts = null;
      this.logger.warn(`Jira webhook metrics could not be read from the database: ${(error as Error).message}`);
      return undefined;
    });
  }
}
