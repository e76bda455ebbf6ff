import { Injectable } from '@nestjs/common';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { CallOutcome, GatedCall } from '../atlassian/atlassian-call.gate.js';
import type { AtlassianProduct } from '../atlassian/atlassian.client.js';
import { RATE_LIMIT_REASONS } from '../atlassian/atlassian.types.js';
import { Clock } from '../common/clock.js';
import { PauseBook } from './pause-book.js';

const METHODS = new Set(['GET', 'POST', 'PUT', 'PATCH', 'DELETE']);
const PRODUCTS: readonly AtlassianProduct[] = ['jira', 'confluence'];
const REASONS: ReadonlySet<string> = new Set(RATE_LIMIT_REASONS);
const OUTCOMES = ['2xx', '3xx', '4xx', '429', '5xx', 'timeout', 'network'] as const;

/**
 * Calls to Atlassian's API as a user and what the rate limits did to them. Labels are products, methods, outcomes and
 * Atlassian's reasons, never a user, site or issue. The pause gauges are read from this replica's PauseBook, which
 * every replica fills from the shared table: use `max()` over replicas for them, `sum()` for the counters.
 */
@Injectable()
export class RateLimitMetrics {
  private readonly calls: Counter<'product' | 'outcome'>;
  private readonly duration: Histogram<'product' | 'method' | 'outcome'>;
  private readonly rateLimited: Counter<'reason'>;
  private readonly refused: Counter<'reason'>;
  private readonly nearLimit: Counter<'product'>;

  constructor(registry: Registry, book: PauseBook, clock: Clock) {
    const registers = [registry];
    this.calls = new Counter({
      name: 'atlassian_api_calls_total',
      help: 'Calls to Atlassian API as a user, by product (jira, confluence, platform) and outcome: 2xx, 3xx, 4xx, 429, 5xx, timeout, network',
      labelNames: ['product', 'outcome'],
      registers,
    });
    this.duration = new Histogram({
      name: 'atlassian_api_call_duration_seconds',
      help: "Time to Atlassian's answer (its head) of a call as a user, by product, method and outcome",
      labelNames: ['product', 'method', 'outcome'],
      buckets: [0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    });
    this.rateLimited = new Counter({
      name: 'atlassian_rate_limited_total',
      help: '429 answers from Atlassian by RateLimit-Reason (none: the answer named no reason; other: one not known here)',
      labelNames: ['reason'],
      registers,
    });
    this.refused = new Counter({
      name: 'atlassian_rate_limit_refused_total',
      help: 'Calls answered 429 here without reaching Atlassian because their scope is paused, by the reason of the pause',
      labelNames: ['reason'],
      registers,
    });
    this.nearLimit = new Counter({
      name: 'atlassian_rate_limit_near_limit_total',
      help: 'Answers from Atlassian with X-RateLimit-NearLimit: true (less than a fifth of a budget left), by product',
      labelNames: ['product'],
      registers,
    });
    // Series from the start, so that an alert's increase() sees the first 429 and the first call of each kind.
    for (const product of [...PRODUCTS, 'platform']) for (const outcome of OUTCOMES) this.calls.inc({ product, outcome }, 0);
    for (const reason of [...RATE_LIMIT_REASONS, 'none', 'other']) {
      this.rateLimited.inc({ reason }, 0);
      this.refused.inc({ reason }, 0);
    }
    for (const product of PRODUCTS) this.nearLimit.inc({ product }, 0);
    new Gauge({
      name: 'atlassian_rate_limit_paused_scopes',
      help: 'Scopes (a product app-wide, a site, the writes to an issue) paused now after a 429, on every replica',
      registers,
      collect() {
        this.set(book.active(clock.now().getTime()).length);
      },
    });
    new Gauge({
      name: 'atlassian_rate_limit_app_paused_seconds',
      help: "Seconds left of a product's app-wide pause (Atlassian's hourly quota for the whole app is exhausted); 0 when none",
      labelNames: ['product'],
      registers,
      collect() {
        const now = clock.now().getTime();
        for (const product of PRODUCTS) this.set({ product }, 0);
        for (const pause of book.active(now)) {
          if (pause.scope.kind === 'app') this.set({ product: pause.scope.product }, (pause.until.getTime() - now) / 1000);
        }
      },
    });
  }

  recordCall(call: GatedCall, outcome: CallOutcome): void {
    const label = outcomeLabel(outcome);
    this.calls.inc({ product: call.product, outcome: label });
    const method = call.method.toUpperCase();
    this.duration.observe({ product: call.product, method: METHODS.has(method) ? method : 'other', outcome: label }, outcome.seconds);
  }

  recordRateLimited(reason: string | undefined): void {
    this.rateLimited.inc({ reason: reasonLabel(reason) });
  }

  recordRefused(reason: string | null): void {
    this.refused.inc({ reason: reasonLabel(reason ?? undefined) });
  }

  recordNearLimit(call: GatedCall): void {
    this.nearLimit.inc({ product: call.product });
  }
}

function outcomeLabel(outcome: CallOutcome): string {
  if (outcome.kind !== 'answered') return outcome.kind;
  if (outcome.status === 429) return '429';
  return `${Math.floor(outcome.status / 100)}xx`;
}

function reasonLabel(reason: string | undefined): string {
  if (reason === undefined) return 'none';
  return REASONS.has(reason) ? reason : 'other';
}
