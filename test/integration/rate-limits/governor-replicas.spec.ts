import { performance } from 'node:perf_hooks';
import { setTimeout as delay } from 'node:timers/promises';
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { Logger } from '@nestjs/common';
import { SchedulerRegistry } from '@nestjs/schedule';
import { Registry } from 'prom-client';
import { DataSource } from 'typeorm';
import type { GatedCall } from '../../../src/atlassian/atlassian-call.gate.js';
import { dataSourceOptions } from '../../../src/database/data-source.js';
import { runMigrations } from '../../../src/database/migrator.js';
import { PauseBook } from '../../../src/rate-limits/pause-book.js';
import { RateLimitGovernor } from '../../../src/rate-limits/rate-limit.governor.js';
import { RateLimitMetrics } from '../../../src/rate-limits/rate-limit.metrics.js';
import { RateLimitPausesRepository } from '../../../src/rate-limits/rate-limit-pauses.repository.js';
import { RateLimitPausesScheduler } from '../../../src/rate-limits/rate-limit-pauses.scheduler.js';
import { ManualClock } from '../../utils/connections.js';
import { createTestDatabase, describePostgres, type TestDatabase } from '../../utils/database.js';

const call = (cloudId: string, method = 'GET', path = '/rest/api/3/myself'): GatedCall => ({ product: 'jira', cloudId, method, path });
const limited = (reason: string, retryAfter: string) => ({
  kind: 'answered' as const,
  status: 429,
  headers: new Headers({ 'Retry-After': retryAfter, 'RateLimit-Reason': reason }),
  seconds: 0.1,
});

/** Three replicas of the governor, each with its own connection pool, on one PostgreSQL database. */
describePostgres('the rate-limit governor across replicas on one database', () => {
  const clock = new ManualClock();
  let database: TestDatabase;
  const dataSources: DataSource[] = [];
  const schedulers: RateLimitPausesScheduler[] = [];
  let replicas: RateLimitGovernor[];

  beforeAll(async () => {
    Logger.overrideLogger(false);
    database = await createTestDatabase();
    for (let i = 0; i < 3; i++) {
      const dataSource = new DataSource(dataSourceOptions({ database: { url: database.url, pgliteDir: '', migrationsRun: false } }));
      await dataSource.initialize();
      dataSources.push(dataSource);
    }
    await runMigrations(dataSources[0]);
    replicas = dataSources.map((dataSource) => {
      const book = new PauseBook();
      return new RateLimitGovernor(
        new RateLimitPausesRepository(dataSource),
        book,
        new RateLimitMetrics(new Registry(), book, clock),
        clock,
      );
    });
  });
  afterAll(async () => {
    for (const scheduler of schedulers) {
      scheduler.onModuleDestroy();
      await scheduler.beforeApplicationShutdown();
    }
    await Promise.all(dataSources.map((dataSource) => dataSource.destroy()));
    await database?.drop();
  });

  it('honours a pause taken on one replica on the others from their next sync, scope for scope', async () => {
    const [a, b, c] = replicas;
    await a.record(call('site-1'), limited('jira-quota-tenant-based', '30'));
    await b.record(call('site-2', 'PUT', '/rest/api/3/issue/ABC-1'), limited('jira-per-issue-on-write', '5'));
    await Promise.all(replicas.map((replica) => replica.sync()));
    for (const replica of [a, b, c]) {
      expect(replica.admit(call('site-1'))).toEqual({ retryAfterMs: 30_000, reason: 'jira-quota-tenant-based' });
      expect(replica.admit(call('site-2', 'PUT', '/rest/api/3/issue/abc-1/comment'))).toEqual({
        retryAfterMs: 5_000,
        reason: 'jira-per-issue-on-write',
      });
      expect(replica.admit(call('site-2'))).toBeUndefined();
      expect(replica.admit(call('site-3'))).toBeUndefined();
    }
    clock.advance(30_000);
    await c.sync();
    expect(c.admit(call('site-1'))).toBeUndefined();
  });

  it('stops every other replica within a second of a global 429, through the scheduled sync', async () => {
    const [a, b, c] = replicas;
    for (const replica of [b, c]) {
      const scheduler = new RateLimitPausesScheduler(new SchedulerRegistry(), replica);
      scheduler.onApplicationBootstrap();
      schedulers.push(scheduler);
    }
    await a.record(call('site-1'), limited('jira-quota-global-based', '60'));
    const answered = performance.now();
    const stopped: number[] = [];
    while (stopped.length < 2 && performance.now() - answered < 2_000) {
      for (const [index, replica] of [b, c].entries()) {
        if (stopped[index] === undefined && replica.admit(call('site-9'))) stopped[index] = performance.now() - answered;
      }
      await delay(20);
    }
    expect(stopped).toHaveLength(2);
    expect(Math.max(...stopped)).toBeLessThan(1_000);
    expect(b.admit(call('site-9'))?.reason).toBe('jira-quota-global-based');
  });
});
