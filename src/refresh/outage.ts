import { Injectable, Logger } from '@nestjs/common';
import { Counter, Gauge, Registry } from 'prom-client';
import { REFRESH_POLICY } from './refresh.policy.js';

const SECOND = 1_000;
const MINUTE = 60 * SECOND;

/** When the token endpoint counts as out, and how it is watched meanwhile (SPEC: "An outage is not a thousand separate failures"). */
export const OUTAGE_POLICY = {
  /** The last this many token calls of this replica decide, */
  sampleSize: 10,
  /** those of the last two minutes only: */
  sampleMaxAgeMs: 2 * MINUTE,
  /** out when at least this share of them failed transiently (5xx, 429, timeout, network), */
  failureShare: 0.8,
  /** for at least this many connections: one connection failing again and again is that connection's own problem. */
  minFailingConnections: 5,
  /** While out, one refresh probes the endpoint this often per replica (3 a minute), or after its Retry-After if later. */
  probeIntervalMs: 20 * SECOND,
  /**
   * While out, a connection this overdue is marked as waiting for the endpoint. Not sooner: another replica that has
   * seen the endpoint answer again refreshes a due connection well within this, and it must not be marked meanwhile.
   */
  markOverdueAfterMs: 30 * SECOND,
} as const;

interface Sample {
  readonly at: number;
  /** The connection whose refresh failed transiently; null when the endpoint answered. */
  readonly failed: string | null;
}

interface Outage {
  readonly since: Date;
  nextProbeAt: Date;
  probes: number;
}

/**
 * Whether Atlassian's token endpoint is out, as this replica sees it from its own token calls, and when to probe it.
 * A state machine on the times it is given:
 *
 * - **up**: every token call is a sample. When most of the recent ones failed transiently, for several connections,
 *   the endpoint is out: per-connection retries stop (each would fail the same way, and a thousand connections would
 *   send a thousand calls a few times a minute).
 * - **out**: one refresh at a time probes it, every `probeIntervalMs` or after a Retry-After, whichever is later.
 *   Any answer from the endpoint (a token, or a refusal of one grant) ends the outage.
 * - **caught up**: after an outage the connections that fell due meanwhile, and those waiting out their own backoff, are
 *   brought forward once, so that they are refreshed at once instead of after their individual backoff.
 *
 * Each replica decides on its own: with N replicas an outage costs N probes per interval, and a replica that has seen
 * the endpoint answer again catches up every connection, whichever replica's they were.
 */
@Injectable()
export class TokenEndpointOutage {
  private readonly logger = new Logger(TokenEndpointOutage.name);
  private samples: Sample[] = [];
  private outage: Outage | null = null;
  private catchUpPending = false;
  private overdueMarkedUpTo: Date | null = null;
  private readonly outageGauge: Gauge;
  private readonly probes: Counter<'outcome'>;

  constructor(registry: Registry) {
    this.outageGauge = new Gauge({
      name: 'atlassian_token_endpoint_outage',
      help: "1 while this replica takes Atlassian's token endpoint to be out: connections are not retried one by one, one refresh probes it",
      registers: [registry],
    });
    this.outageGauge.set(0);
    this.probes = new Counter({
      name: 'atlassian_token_endpoint_probes_total',
      help: "Refreshes that probed Atlassian's token endpoint during an outage, by outcome: answered (the outage ended) or failing",
      labelNames: ['outcome'],
      registers: [registry],
    });
    for (const outcome of ['answered', 'failing']) this.probes.labels(outcome).inc(0);
  }

  /** True while the endpoint is taken to be out. */
  get active(): boolean {
    return this.outage !== null;
  }

  /** When the next probe may go, while out. */
  get nextProbeAt(): Date | null {
    return this.outage?.nextProbeAt ?? null;
  }

  probeDue(now: Date): boolean {
    return this.outage !== null && now >= this.outage.nextProbeAt;
  }

  /** The endpoint answered (with tokens, or with a refusal that concerns one grant or the client): it works. */
  answered(now: Date, probe: boolean): void {
    if (probe) this.probes.inc({ outcome: 'answered' });
    if (!this.outage) {
      this.sample(now, null);
      return;
    }
    const seconds = Math.round((now.getTime() - this.outage.since.getTime()) / SECOND);
    this.logger.log(
      `Atlassian's token endpoint answers again after ${seconds} s out (${this.outage.probes} probes): ` +
        'refreshing every connection that fell due meanwhile',
    );
    this.outage = null;
    this.samples = [];
    this.catchUpPending = true;
    this.outageGauge.set(0);
  }

  /** A transient failure of the token endpoint (5xx, 429, timeout, network) while refreshing `connectionId`. */
  failed(connectionId: string, now: Date, retryAfterMs: number | undefined, probe: boolean): void {
    const notBefore = now.getTime() + Math.min(retryAfterMs ?? 0, REFRESH_POLICY.maxRetryAfterMs);
    if (this.outage) {
      if (probe) {
        this.probes.inc({ outcome: 'failing' });
        this.outage.probes += 1;
      }
      const next = Math.max(this.outage.nextProbeAt.getTime(), notBefore, probe ? now.getTime() + OUTAGE_POLICY.probeIntervalMs : 0);
      this.outage.nextProbeAt = new Date(next);
      if (probe) this.logger.log(`Atlassian's token endpoint is still failing; next probe at ${this.outage.nextProbeAt.toISOString()}`);
      return;
    }
    this.sample(now, connectionId);
    const recent = this.samples;
    const failures = recent.filter((s) => s.failed !== null);
    const connections = new Set(failures.map((s) => s.failed)).size;
    if (failures.length < OUTAGE_POLICY.failureShare * recent.length || connections < OUTAGE_POLICY.minFailingConnections) return;
    this.outage = { since: now, nextProbeAt: new Date(Math.max(now.getTime() + OUTAGE_POLICY.probeIntervalMs, notBefore)), probes: 0 };
    this.catchUpPending = false;
    this.overdueMarkedUpTo = null;
    this.outageGauge.set(1);
    this.logger.warn(
      `Atlassian's token endpoint failed ${failures.length} of the last ${recent.length} refreshes, for ${connections} connections: ` +
        `taking it to be out. Connections are no longer retried one by one; one refresh probes it every ` +
        `${OUTAGE_POLICY.probeIntervalMs / SECOND} s (next at ${this.outage.nextProbeAt.toISOString()}).`,
    );
  }

  /**
   * While out: the stretch of due times whose connections are overdue by `markOverdueAfterMs` and have not been marked
   * as waiting for the endpoint yet, from the end of the last stretch marked (null: from the start);
   * `overdueMarked` records it as done.
   */
  overdueToMark(now: Date): { readonly after: Date | null; readonly upTo: Date } | null {
    if (!this.outage) return null;
    const upTo = new Date(now.getTime() - OUTAGE_POLICY.markOverdueAfterMs);
    return this.overdueMarkedUpTo && upTo <= this.overdueMarkedUpTo ? null : { after: this.overdueMarkedUpTo, upTo };
  }

  overdueMarked(upTo: Date): void {
    if (this.outage) this.overdueMarkedUpTo = upTo;
  }

  /** The sentence stored as lastError of the connections that wait for the endpoint, while out. */
  waitingReason(): string {
    const since = this.outage?.since.toISOString() ?? '';
    return `Not refreshed: Atlassian's token endpoint has been failing for most connections since ${since}; refreshed as soon as it answers again`;
  }

  /** After an outage ended: the connections that fell due meanwhile are still to be brought forward. */
  get catchUpDue(): boolean {
    return this.catchUpPending;
  }

  caughtUp(): void {
    this.catchUpPending = false;
  }

  private sample(now: Date, failed: string | null): void {
    const oldest = now.getTime() - OUTAGE_POLICY.sampleMaxAgeMs;
    this.samples.push({ at: now.getTime(), failed });
    this.samples = this.samples.slice(-OUTAGE_POLICY.sampleSize).filter((s) => s.at >= oldest);
  }
}
