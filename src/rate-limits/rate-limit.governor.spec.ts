import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { Logger } from '@nestjs/common';
import { Registry } from 'prom-client';
import type { CallOutcome, GatedCall } from '../atlassian/atlassian-call.gate.js';
import type { Clock } from '../common/clock.js';
import { PauseBook, type Pause } from './pause-book.js';
import { RateLimitGovernor } from './rate-limit.governor.js';
import { RateLimitMetrics } from './rate-limit.metrics.js';
import type { RateLimitPausesRepository } from './rate-limit-pauses.repository.js';

const START = Date.parse('2026-03-02T09:00:00.000Z');

/** A shared table stand-in: what `pause` wrote, `findActive` answers (plus what another replica wrote). */
class FakeRepository {
  stored: Pause[] = [];
  failWrites = false;

  pause(pause: Pause): Promise<void> {
    if (this.failWrites) return Promise.reject(new Error('connection terminated'));
    this.stored.push(pause);
    return Promise.resolve();
  }

  findActive(now: Date): Promise<Pause[]> {
    return Promise.resolve(this.stored.filter((pause) => pause.until > now));
  }
}

const jira = (method: string, path: string, cloudId = 'site-1'): GatedCall => ({ product: 'jira', cloudId, method, path });
const answered = (status: number, headers: Record<string, string> = {}): CallOutcome => ({
  kind: 'answered',
  status,
  headers: new Headers(headers),
  seconds: 0.05,
});
const limited = (reason: string | undefined, retryAfter = '60', more: Record<string, string> = {}): CallOutcome =>
  answered(429, {
    ...(retryAfter === '' ? {} : { 'Retry-After': retryAfter }),
    ...(reason ? { 'RateLimit-Reason': reason } : {}),
    ...more,
  });

describe('RateLimitGovernor', () => {
  let now: number;
  let repository: FakeRepository;
  let registry: Registry;
  let governor: RateLimitGovernor;
  const clock: Clock = { now: () => new Date(now) };

  function replica(): RateLimitGovernor {
    const book = new PauseBook();
    return new RateLimitGovernor(
      repository as unknown as RateLimitPausesRepository,
      book,
      new RateLimitMetrics(new Registry(), book, clock),
      clock,
    );
  }

  async function metric(name: string, labels: Record<string, string> = {}): Promise<number> {
    const found = (await registry.getMetricsAsJSON()).find((m) => m.name === name || name === `${m.name}_count`);
    const values = (found?.values ?? []) as { labels: Record<string, unknown>; value: number; metricName?: string }[];
    return values
      .filter((v) => (v.metricName ?? name) === name && Object.entries(labels).every(([k, l]) => v.labels[k] === l))
      .reduce((sum, v) => sum + v.value, 0);
  }

  beforeEach(() => {
    now = START;
    repository = new FakeRepository();
    registry = new Registry();
    const book = new PauseBook();
    governor = new RateLimitGovernor(
      repository as unknown as RateLimitPausesRepository,
      book,
      new RateLimitMetrics(registry, book, clock),
      clock,
    );
  });
  afterEach(() => {
    jest.restoreAllMocks();
  });

  it('admits everything until Atlassian answers 429', async () => {
    await governor.record(jira('GET', '/rest/api/3/myself'), answered(200));
    expect(governor.admit(jira('GET', '/rest/api/3/myself'))).toBeUndefined();
  });

  it('pauses every call of the product, on every site, after a global quota 429, until Retry-After has passed', async () => {
    await governor.record(jira('GET', '/rest/api/3/myself'), limited('jira-quota-global-based', '60'));
    now += 20_500;
    expect(governor.admit(jira('PUT', '/rest/api/3/issue/ABC-1', 'site-2'))).toEqual({
      retryAfterMs: 39_500,
      reason: 'jira-quota-global-based',
    });
    expect(governor.admit({ product: 'confluence', cloudId: 'site-1', method: 'GET', path: '/wiki/api/v2/pages/1' })).toBeUndefined();
    expect(governor.admit({ product: 'platform', method: 'GET', path: '/oauth/token/accessible-resources' })).toBeUndefined();
    now += 39_500;
    expect(governor.admit(jira('GET', '/rest/api/3/myself'))).toBeUndefined();
  });

  it.each(['jira-quota-tenant-based', 'jira-burst-based', undefined])('pauses only the site after a 429 for %s', async (reason) => {
    await governor.record(jira('GET', '/rest/api/3/search/jql'), limited(reason, '10'));
    expect(governor.admit(jira('GET', '/rest/api/3/myself'))).toEqual({ retryAfterMs: 10_000, ...(reason ? { reason } : {}) });
    expect(governor.admit(jira('GET', '/rest/api/3/myself', 'site-2'))).toBeUndefined();
  });

  it('pauses only the writes to the issue after a per-issue write limit', async () => {
    await governor.record(jira('PUT', '/rest/api/3/issue/ABC-1'), limited('jira-per-issue-on-write', '3'));
    expect(governor.admit(jira('POST', '/rest/api/3/issue/abc-1/comment'))).toEqual({
      retryAfterMs: 3000,
      reason: 'jira-per-issue-on-write',
    });
    expect(governor.admit(jira('GET', '/rest/api/3/issue/ABC-1'))).toBeUndefined();
    expect(governor.admit(jira('PUT', '/rest/api/3/issue/ABC-2'))).toBeUndefined();
  });

  it('answers the pause that ends last when several hold a call', async () => {
    await governor.record(jira('PUT', '/rest/api/3/issue/ABC-1'), limited('jira-per-issue-on-write', '30'));
    await governor.record(jira('GET', '/rest/api/3/myself'), limited('jira-burst-based', '2'));
    expect(governor.admit(jira('PUT', '/rest/api/3/issue/ABC-1'))).toEqual({ retryAfterMs: 30_000, reason: 'jira-per-issue-on-write' });
  });

  it.each([
    ['Retry-After in seconds', limited('jira-burst-based', '7'), 7_000],
    ['Retry-After as an HTTP date', limited('jira-burst-based', new Date(START + 12_000).toUTCString()), 12_000],
    [
      'no Retry-After but X-RateLimit-Reset',
      limited('jira-quota-tenant-based', '', { 'X-RateLimit-Reset': '2026-03-02T10:00Z' }),
      3_600_000,
    ],
    ['neither', limited('jira-burst-based', ''), 5_000],
    ['a Retry-After of a day', limited('jira-burst-based', '86400'), 3_600_000],
  ])('takes the pause from %s', async (_, outcome, ms) => {
    await governor.record(jira('GET', '/rest/api/3/myself'), outcome);
    expect(governor.admit(jira('GET', '/rest/api/3/myself'))?.retryAfterMs).toBe(ms);
  });

  it('shares a pause: another replica honours it from its next sync, without a read per call', async () => {
    const other = replica();
    await other.sync();
    const reads = jest.spyOn(repository, 'findActive');
    await governor.record(jira('GET', '/rest/api/3/myself'), limited('jira-quota-global-based', '60'));
    expect(other.admit(jira('GET', '/rest/api/3/myself', 'site-9'))).toBeUndefined();
    await other.sync();
    expect(other.admit(jira('GET', '/rest/api/3/myself', 'site-9'))).toEqual({ retryAfterMs: 60_000, reason: 'jira-quota-global-based' });
    for (let i = 0; i < 100; i++) other.admit(jira('GET', '/rest/api/3/myself'));
    expect(reads).toHaveBeenCalledTimes(1);
  });

  it('keeps its own pause when it could not be written, through syncs, and says so', async () => {
    const warn = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    repository.failWrites = true;
    await expect(governor.record(jira('GET', '/rest/api/3/myself'), limited('jira-burst-based', '30'))).resolves.toBeUndefined();
    await governor.sync();
    expect(governor.admit(jira('GET', '/rest/api/3/myself'))?.retryAfterMs).toBe(30_000);
    expect(warn.mock.calls.map(([message]) => String(message))).toContainEqual(expect.stringMatching(/could not be shared/));
  });

  it('counts calls, 429s by reason and refusals on /metrics', async () => {
    await governor.record(jira('GET', '/rest/api/3/myself'), answered(200));
    await governor.record(jira('PUT', '/rest/api/3/issue/A-1'), answered(404));
    await governor.record(jira('GET', '/rest/api/3/myself'), { kind: 'timeout', seconds: 15 });
    await governor.record(jira('GET', '/rest/api/3/myself'), limited('jira-quota-global-based'));
    await governor.record(jira('GET', '/rest/api/3/myself', 'site-2'), limited(undefined));
    governor.admit(jira('GET', '/rest/api/3/myself'));
    expect(await metric('atlassian_api_calls_total', { product: 'jira', outcome: '2xx' })).toBe(1);
    expect(await metric('atlassian_api_calls_total', { product: 'jira', outcome: '4xx' })).toBe(1);
    expect(await metric('atlassian_api_calls_total', { product: 'jira', outcome: '429' })).toBe(2);
    expect(await metric('atlassian_api_calls_total', { product: 'jira', outcome: 'timeout' })).toBe(1);
    expect(await metric('atlassian_api_call_duration_seconds_count', { method: 'PUT' })).toBe(1);
    expect(await metric('atlassian_rate_limited_total', { reason: 'jira-quota-global-based' })).toBe(1);
    expect(await metric('atlassian_rate_limited_total', { reason: 'none' })).toBe(1);
    expect(await metric('atlassian_rate_limit_refused_total', { reason: 'jira-quota-global-based' })).toBe(1);
    expect(await metric('atlassian_rate_limit_paused_scopes')).toBe(2);
    expect(await metric('atlassian_rate_limit_app_paused_seconds', { product: 'jira' })).toBe(60);
    expect(await metric('atlassian_rate_limit_app_paused_seconds', { product: 'confluence' })).toBe(0);
  });

  it('counts every near-limit answer and logs it once a minute per site', async () => {
    const warn = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    const near = answered(200, { 'X-RateLimit-NearLimit': 'true', 'X-RateLimit-Remaining': '9', 'X-RateLimit-Limit': '100' });
    await governor.record(jira('GET', '/rest/api/3/myself'), near);
    await governor.record(jira('GET', '/rest/api/3/issue/A-1'), near);
    await governor.record(jira('GET', '/rest/api/3/myself', 'site-2'), near);
    now += 60_000;
    await governor.record(jira('GET', '/rest/api/3/myself'), near);
    await governor.record(jira('GET', '/rest/api/3/myself'), answered(200, { 'X-RateLimit-NearLimit': 'false' }));
    expect(await metric('atlassian_rate_limit_near_limit_total', { product: 'jira' })).toBe(4);
    expect(warn.mock.calls.map(([message]) => String(message))).toEqual([
      'Atlassian says jira site site-1 is near its rate limit (9 of 100 left); logged at most once a minute',
      'Atlassian says jira site site-2 is near its rate limit (9 of 100 left); logged at most once a minute',
      'Atlassian says jira site site-1 is near its rate limit (9 of 100 left); logged at most once a minute',
    ]);
  });
});
