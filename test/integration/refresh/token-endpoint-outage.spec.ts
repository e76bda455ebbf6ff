import { afterAll, afterEach, beforeAll, beforeEach, expect, it } from '@jest/globals';
import type { AppConfig } from '../../../src/config/app-config.js';
import { DomainError } from '../../../src/common/errors.js';
import { OUTAGE_POLICY } from '../../../src/refresh/outage.js';
import { ManualClock, outboxEvents, readConnection, SandboxTokenEndpoint, seedConnection } from '../../utils/connections.js';
import { describePostgres, openMigratedDatabase, type OpenedDatabase } from '../../utils/database.js';
import { FixedRandom, metricValue, refreshConfig, refreshStack, silenceNestLogs, truncate, type RefreshStack } from './refresh-stack.js';

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const CONNECTIONS = 20;
/** One connection falls due every 3 s: a minute's outage meets all of them. */
const DUE_EVERY_MS = 3 * SECOND;
const TICK_MS = SECOND;

silenceNestLogs();

describePostgres("refreshing through an outage of Atlassian's token endpoint", () => {
  let db: OpenedDatabase;
  let clock: ManualClock;
  let sandbox: SandboxTokenEndpoint;
  let config: AppConfig;
  let stack: RefreshStack;
  let ids: string[];

  beforeAll(async () => {
    db = await openMigratedDatabase('postgres');
  }, 30_000);
  afterAll(async () => {
    await db?.close();
  }, 30_000);

  beforeEach(async () => {
    await truncate(db.dataSource);
    clock = new ManualClock();
    sandbox = await new SandboxTokenEndpoint(clock).start();
    config = refreshConfig(sandbox.url, { REFRESH_INTERVAL_SECONDS: '1' });
    stack = await refreshStack({ config, clock, dataSource: db.dataSource, random: new FixedRandom(0.5) });
    ids = [];
    const lead = config.refresh.leadSeconds * SECOND;
    for (let i = 0; i < CONNECTIONS; i++) {
      const pair = await sandbox.connect(`user-${i}`);
      const dueAt = clock.now().getTime() + i * DUE_EVERY_MS;
      ids.push(
        await seedConnection(db.dataSource, stack.cipher, clock, {
          userId: `user-${i}`,
          atlassianAccountId: pair.accountId,
          accessToken: pair.accessToken,
          refreshToken: pair.refreshToken,
          accessTokenExpiresAt: new Date(dueAt + lead),
        }),
      );
    }
  });
  afterEach(async () => {
    await stack.close();
    await sandbox.close();
  });

  const refreshCalls = () => sandbox.idp.stats().tokenCalls.refresh_token;
  const statuses = async () =>
    db.dataSource.query<{ status: string; n: number }[]>(`SELECT status, count(*)::int AS n FROM connections GROUP BY status`);
  const allActive = async () => (await statuses()).every((row) => row.status === 'active');

  /** Runs the daemon's cycle once a second (as REFRESH_INTERVAL_SECONDS=1 does) for `ms`, or until `until` holds. */
  async function tick(ms: number, until?: () => Promise<boolean>): Promise<number> {
    for (let elapsed = 0; elapsed < ms; elapsed += TICK_MS) {
      await stack.service.runDueRefreshes();
      if (until && (await until())) return elapsed;
      clock.advance(TICK_MS);
    }
    return ms;
  }

  it('stops retrying each connection, probes a few times a minute, and refreshes every connection once it answers', async () => {
    sandbox.idp.addFault({ seconds: 60, endpoint: 'token', status: 503 });

    await tick(MINUTE);
    const outageCalls = refreshCalls();
    expect(await metricValue(stack.registry, 'atlassian_token_endpoint_outage')).toBe(1);
    // Five connections fail (a few of them twice) before the outage is noticed; then one probe every 20 s. Retrying
    // each connection on its own backoff would have cost about 60 calls.
    expect(outageCalls).toBeLessThanOrEqual(OUTAGE_POLICY.minFailingConnections * 2 + 3);
    expect(await metricValue(stack.registry, 'atlassian_token_endpoint_probes_total', { outcome: 'failing' })).toBeGreaterThanOrEqual(1);
    // Every connection 30 s overdue says it waits for the endpoint (or failed on its own before the outage was noticed).
    // The last cycle of the minute ran at 59 s.
    const overdue = ids.filter((_, i) => i * DUE_EVERY_MS <= MINUTE - TICK_MS - OUTAGE_POLICY.markOverdueAfterMs);
    const rows = await Promise.all(ids.map((id) => readConnection(db.dataSource, stack.cipher, id)));
    expect(rows.filter((row) => overdue.includes(row.id)).every((row) => row.status === 'refresh_failing')).toBe(true);
    expect(rows.find((row) => row.id === overdue.at(-1))!.lastError).toContain(
      "Atlassian's token endpoint has been failing for most connections",
    );
    expect(rows.filter((row) => !overdue.includes(row.id)).every((row) => row.status === 'active')).toBe(true);

    // Atlassian is back now (the fault plan ended at 60 s): the next probe gets an answer, and every connection
    // is refreshed in the same cycle, not after its own backoff.
    const secondsToRecover = (await tick(MINUTE, allActive)) / SECOND;
    expect(secondsToRecover).toBeLessThanOrEqual(OUTAGE_POLICY.probeIntervalMs / SECOND);
    expect(await metricValue(stack.registry, 'atlassian_token_endpoint_outage')).toBe(0);
    expect(await metricValue(stack.registry, 'atlassian_token_endpoint_probes_total', { outcome: 'answered' })).toBe(1);
    expect(refreshCalls() - outageCalls).toBe(CONNECTIONS);
    // A connection.recovered for each that was marked failing (those due in the last 30 s of the outage were not).
    const recovered = (await outboxEvents(db.dataSource)).filter((event) => event.type === 'connection.recovered');
    expect(recovered.length).toBeGreaterThanOrEqual(overdue.length);
    expect(sandbox.idp.stats()).toMatchObject({ reuseWithinLeeway: 0, reuseAfterLeeway: 0, grantsRevoked: 0 });
  });

  it("waits out a 429's Retry-After between probes", async () => {
    sandbox.idp.addFault({ seconds: 5 * 60, endpoint: 'token', status: 429, retryAfterSeconds: 45 });
    await tick(20 * SECOND);
    expect(await metricValue(stack.registry, 'atlassian_token_endpoint_outage')).toBe(1);
    const callTimes: number[] = [];
    let calls = refreshCalls();
    for (let elapsed = 0; elapsed < 3 * MINUTE; elapsed += TICK_MS) {
      await stack.service.runDueRefreshes();
      if (refreshCalls() > calls) callTimes.push(clock.now().getTime());
      calls = refreshCalls();
      clock.advance(TICK_MS);
    }
    expect(callTimes.length).toBeGreaterThanOrEqual(3);
    const gaps = callTimes.slice(1).map((time, i) => time - callTimes[i]);
    expect(Math.min(...gaps)).toBeGreaterThanOrEqual(45 * SECOND);
  });

  it('answers an on-demand refresh during the outage with 503 and Retry-After, without calling Atlassian', async () => {
    const pair = await sandbox.connect('expired');
    await seedConnection(db.dataSource, stack.cipher, clock, {
      userId: 'expired',
      atlassianAccountId: pair.accountId,
      accessToken: pair.accessToken,
      refreshToken: pair.refreshToken,
      accessTokenExpiresAt: new Date(clock.now().getTime() - SECOND),
      dueAt: new Date(clock.now().getTime() + 10 * MINUTE),
    });
    sandbox.idp.addFault({ seconds: 10 * MINUTE, endpoint: 'token', status: 503 });
    await tick(20 * SECOND);
    expect(await metricValue(stack.registry, 'atlassian_token_endpoint_outage')).toBe(1);

    const calls = refreshCalls();
    const refused = await stack.accessTokens.accessToken('expired', 60).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(DomainError);
    expect(refused).toMatchObject({ code: 'atlassian_unavailable' });
    const retryAfter = Number((refused as DomainError).headers['Retry-After']);
    expect(retryAfter).toBeGreaterThan(0);
    expect(retryAfter).toBeLessThanOrEqual(OUTAGE_POLICY.probeIntervalMs / SECOND);
    expect(refreshCalls()).toBe(calls);
  });

  it('keeps per-connection backoff when only some refreshes fail', async () => {
    // One call in three fails (the others are answered, 1 ms late): the endpoint works.
    for (let i = 0; i < 20; i++) {
      sandbox.idp.addFault({ count: 1, endpoint: 'token', status: 503 });
      sandbox.idp.addFault({ count: 2, endpoint: 'token', timeoutMs: 1 });
    }
    await tick(MINUTE);
    expect(await metricValue(stack.registry, 'atlassian_token_endpoint_outage')).toBe(0);
    expect(await metricValue(stack.registry, 'atlassian_token_refreshes_total', { outcome: 'failing' })).toBeGreaterThanOrEqual(5);
    const failing = (await Promise.all(ids.map((id) => readConnection(db.dataSource, stack.cipher, id)))).filter(
      (row) => row.status === 'refresh_failing',
    );
    // Each failing connection waits for its own backoff (10 s, then 20 s, with random() = 0.5: 5 s, then 10 s).
    for (const row of failing) expect(row.lastError).toContain('503');
  });
});
