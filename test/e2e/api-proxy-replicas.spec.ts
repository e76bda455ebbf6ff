import { performance } from 'node:perf_hooks';
import { setTimeout as delay } from 'node:timers/promises';
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { DataSource } from 'typeorm';
import { callApi, errorOf, userPath } from '../utils/api.js';
import type { TestApp } from '../utils/app.js';
import { ManualClock } from '../utils/connections.js';
import { describePostgres } from '../utils/database.js';
import { startReplicas, type Replicas } from '../utils/replicas.js';
import { connectUser, sandboxControl } from './connect-browser.js';

describePostgres('a pause taken by one replica is honoured by another', () => {
  const clock = new ManualClock();
  let replicas: Replicas;
  let first: TestApp;
  let second: TestApp;
  let cloudIds: string[];

  beforeAll(async () => {
    replicas = await startReplicas(clock);
    ({ first, second } = replicas);
    for (const [userId, login] of [
      ['replica-a', 'frank'],
      ['replica-b', 'grace'],
    ]) {
      expect((await connectUser(first, userId, login)).response.status).toBe(200);
    }
    const rows: { cloud_id: string }[] = await first.app
      .get(DataSource)
      .query(`SELECT r.cloud_id FROM accessible_resources r JOIN connections c ON c.id = r.connection_id ORDER BY c.user_id`);
    cloudIds = rows.map((row) => row.cloud_id);
  });
  afterAll(() => replicas?.close());

  const myself = (replica: TestApp, userId: string, cloudId: string) =>
    callApi(replica, 'GET', userPath(userId, `/proxy/jira/${cloudId}/rest/api/3/myself`));

  const calls = () => replicas.apiCalls();

  it("stops the other replica's calls within a second of Atlassian's app-wide 429, without them reaching Atlassian", async () => {
    const [siteA, siteB] = cloudIds;
    expect((await myself(second, 'replica-b', siteB)).status).toBe(200);
    await sandboxControl(first, 'faults', {
      count: 1,
      endpoint: 'api',
      status: 429,
      retryAfterSeconds: 60,
      rateLimitReason: 'jira-quota-global-based',
    });
    const limited = await myself(first, 'replica-a', siteA);
    const answeredAt = performance.now();
    expect([limited.status, limited.headers.get('ratelimit-reason')]).toEqual([429, 'jira-quota-global-based']);
    const reached = (await calls()).length;

    let held: Response | undefined;
    while (performance.now() - answeredAt < 2_000) {
      const response = await myself(second, 'replica-b', siteB);
      if (response.status === 429) {
        held = response;
        break;
      }
      await delay(25);
    }
    const stoppedAfterMs = performance.now() - answeredAt;
    expect(held).toBeDefined();
    expect(stoppedAfterMs).toBeLessThan(1_000);
    expect([held!.headers.get('retry-after'), held!.headers.get('ratelimit-reason')]).toEqual(['60', 'jira-quota-global-based']);
    expect(await errorOf(held!)).toEqual([429, 'atlassian_rate_limited']);
    for (let i = 0; i < 5; i++) expect((await myself(second, 'replica-b', siteB)).status).toBe(429);
    // What reached Atlassian after its 429: at most the calls the second replica made before its next read of the pauses.
    const leaked = (await calls()).slice(reached);
    expect(leaked.every((call) => call.status === 200 && call.path.includes(siteB))).toBe(true);

    clock.advance(60_000);
    expect((await myself(second, 'replica-b', siteB)).status).toBe(200);
    expect((await myself(first, 'replica-a', siteA)).status).toBe(200);
  });
});
