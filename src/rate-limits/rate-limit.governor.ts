import { Injectable, Logger } from '@nestjs/common';
import {
  AtlassianCallGate,
  type AnswerHeaders,
  type CallOutcome,
  type GatedCall,
  type GateRefusal,
} from '../atlassian/atlassian-call.gate.js';
import { retryAfterMs } from '../atlassian/atlassian.client.js';
import { Clock } from '../common/clock.js';
import { shortId } from '../logging/redact.js';
import { PauseBook, type Pause } from './pause-book.js';
import { scopeOfLimit, scopesOf, type PauseScope } from './pause-scopes.js';
import { RateLimitMetrics } from './rate-limit.metrics.js';
import { RateLimitPausesRepository } from './rate-limit-pauses.repository.js';

/** A 429 that says neither Retry-After nor X-RateLimit-Reset still gets a pause: retrying at once is what it refused. */
const UNSPECIFIED_PAUSE_MS = 5_000;
/** Atlassian's longest limit is the hourly quota; a longer Retry-After is taken for a mistake and cut to this. */
const MAX_PAUSE_MS = 3_600_000;
const NEAR_LIMIT_LOG_INTERVAL_MS = 60_000;

/**
 * The one rate-limit governor for every call to Atlassian's API as a user, on every replica. A 429 pauses its scope
 * (see `scopeOfLimit`) until Retry-After has passed; while a scope is paused, calls in it are refused at once without
 * reaching Atlassian. Pauses are written to a shared table and read back by every replica's `sync` (RateLimitPausesScheduler,
 * every 500 ms), so checking a call is a lookup in memory, never a database round trip: another replica's pause is
 * honoured here at most one sync interval (plus the read's own time) after it was taken; this replica's own at once.
 */
@Injectable()
export class RateLimitGovernor extends AtlassianCallGate {
  private readonly logger = new Logger(RateLimitGovernor.name);
  private readonly nearLimitLoggedAt = new Map<string, number>();
  private syncFailing = false;

  constructor(
    private readonly repository: RateLimitPausesRepository,
    private readonly book: PauseBook,
    private readonly metrics: RateLimitMetrics,
    private readonly clock: Clock,
  ) {
    super();
  }

  admit(call: GatedCall): GateRefusal | undefined {
    const now = this.clock.now().getTime();
    const pause = this.book.longest(scopesOf(call), now);
    if (!pause) return undefined;
    this.metrics.recordRefused(pause.reason);
    return { retryAfterMs: pause.until.getTime() - now, ...(pause.reason === null ? {} : { reason: pause.reason }) };
  }

  async record(call: GatedCall, outcome: CallOutcome): Promise<void> {
    this.metrics.recordCall(call, outcome);
    if (outcome.kind !== 'answered') return;
    if (outcome.headers.get('x-ratelimit-nearlimit')?.trim().toLowerCase() === 'true') this.nearLimit(call, outcome.headers);
    if (outcome.status === 429) await this.pause(call, outcome.headers);
  }

  /** Reads every replica's pauses in force; this replica's own that are not stored yet stay. */
  async sync(): Promise<void> {
    const now = this.clock.now();
    let shared: Pause[];
    try {
      shared = await this.repository.findActive(now);
    } catch (error) {
      if (!this.syncFailing)
        this.logger.warn(`Rate-limit pauses could not be read; using what this replica knows: ${(error as Error).message}`);
      this.syncFailing = true;
      return;
    }
    if (this.syncFailing) this.logger.log('Rate-limit pauses are read from the database again');
    this.syncFailing = false;
    this.book.replace(shared, now.getTime());
  }

  private async pause(call: GatedCall, headers: AnswerHeaders): Promise<void> {
    const reason = headers.get('ratelimit-reason')?.split(',')[0].trim() || undefined;
    this.metrics.recordRateLimited(reason);
    const scope = scopeOfLimit(call, reason);
    if (!scope) return;
    const now = this.clock.now();
    const pause: Pause = {
      scope,
      reason: reason ?? null,
      until: new Date(now.getTime() + pauseMs(headers, now)),
    };
    this.book.add(pause);
    this.logger.warn(
      `Atlassian answered 429 (${reason ?? 'no reason given'}): ${describe(pause.scope, call)} paused for ` +
        `${Math.ceil((pause.until.getTime() - now.getTime()) / 1000)} s on every replica`,
    );
    try {
      await this.repository.pause(pause, now);
    } catch (error) {
      this.logger.warn(`A rate-limit pause could not be shared with the other replicas: ${(error as Error).message}`);
    }
  }

  /** Counted every time; logged once a minute per site (per product for platform calls), with the budget left. */
  private nearLimit(call: GatedCall, headers: AnswerHeaders): void {
    this.metrics.recordNearLimit(call);
    const site = scopesOf(call).find((scope) => scope.kind === 'site');
    const key = site?.key ?? call.product;
    const now = this.clock.now().getTime();
    const last = this.nearLimitLoggedAt.get(key);
    if (last !== undefined && now - last < NEAR_LIMIT_LOG_INTERVAL_MS) return;
    for (const [logged, at] of this.nearLimitLoggedAt) if (now - at >= NEAR_LIMIT_LOG_INTERVAL_MS) this.nearLimitLoggedAt.delete(logged);
    this.nearLimitLoggedAt.set(key, now);
    const remaining = headers.get('x-ratelimit-remaining');
    const limit = headers.get('x-ratelimit-limit');
    this.logger.warn(
      `Atlassian says ${site ? describe(site, call) : `the ${call.product} API`} is near its rate limit` +
        `${remaining !== null && limit !== null ? ` (${remaining} of ${limit} left)` : ''}; logged at most once a minute`,
    );
  }
}

/** Retry-After, else the X-RateLimit-Reset time (ISO 8601, e.g. 2026-03-02T10:00Z), else a short default; at most an hour. */
function pauseMs(headers: AnswerHeaders, now: Date): number {
  const reset = Date.parse(headers.get('x-ratelimit-reset') ?? '');
  const ms = retryAfterMs(headers, now.getTime()) ?? (Number.isNaN(reset) ? UNSPECIFIED_PAUSE_MS : reset - now.getTime());
  return Math.min(MAX_PAUSE_MS, Math.max(0, ms));
}

/** The scope in words for a log line; a site by its shortened id, an issue by its key. */
function describe(scope: PauseScope, call: GatedCall): string {
  const site = call.cloudId === undefined ? '' : shortId(call.cloudId);
  switch (scope.kind) {
    case 'app':
      return `every ${scope.product} call of the app`;
    case 'site':
      return `${scope.product} site ${site}`;
    case 'issue':
      return `writes to ${scope.key.slice(scope.key.lastIndexOf('/') + 1)} on ${scope.product} site ${site}`;
  }
}
