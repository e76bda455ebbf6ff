import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import pg from 'pg';
import { DataSource } from 'typeorm';
import { TokenCipher } from '../../src/crypto/token-cipher.js';
import { RefreshScheduler } from '../../src/refresh/refresh.scheduler.js';
import { startTestApp, TEST_API_KEY, type TestApp } from '../utils/app.js';
import { ManualClock, SandboxTokenEndpoint, seedConnection } from '../utils/connections.js';
import { createTestDatabase, describePostgres, type TestDatabase } from '../utils/database.js';
import { eventually } from '../utils/eventually.js';

const MINUTE = 60_000;

describePostgres('the refresh job in the running service', () => {
  let clock: ManualClock;
  let sandbox: SandboxTokenEndpoint;
  let app: TestApp | undefined;

  beforeAll(() => {
    clock = new ManualClock();
  });
  afterEach(async () => {
    await app?.close();
    app = undefined;
    await sandbox?.close();
  }, 30_000);

  async function start(env: Record<string, string> = {}, databaseUrl?: string): Promise<TestApp> {
    sandbox = await new SandboxTokenEndpoint(clock).start();
    app = await startTestApp({ clock, databaseUrl, env: { ATLASSIAN_AUTH_URL: sandbox.url, REFRESH_INTERVAL_SECONDS: '1', ...env } });
    return app;
  }

  async function seedDue(target: TestApp, login: string): Promise<string> {
    const pair = await sandbox.connect(login);
    return seedConnection(target.app.get(DataSource), target.app.get(TokenCipher), clock, {
      userId: login,
      atlassianAccountId: pair.accountId,
      accessToken: pair.accessToken,
      refreshToken: pair.refreshToken,
      accessTokenExpiresAt: new Date(clock.now().getTime() + MINUTE),
    });
  }

  const version = (target: TestApp, id: string) =>
    target.app
      .get(DataSource)
      .query(`SELECT version, status FROM connections WHERE id = $1`, [id])
      .then((rows: { version: number; status: string }[]) => rows[0]);

  it('refreshes due connections on its own, and exposes what it did on /metrics without ids or tokens', async () => {
    const service = await start();
    const id = await seedDue(service, 'scheduled-user');
    await eventually(
      () => version(service, id),
      (row) => row.version === 2,
    );

    const tokenResponse = await fetch(`${service.baseUrl}/v1/users/scheduled-user/access-token`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${TEST_API_KEY}`, 'Content-Type': 'application/json' },
      body: '{}',
    });
    const { accessToken } = (await tokenResponse.json()) as { accessToken: string };

    const scrape = await fetch(`${service.baseUrl}/metrics`);
    expect(scrape.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
    const metrics = await scrape.text();
    expect(metrics).toContain('atlassian_token_refreshes_total{outcome="refreshed"} 1');
    expect(metrics).toMatch(/atlassian_token_refresh_duration_seconds_count\{outcome="refreshed"\} 1/);
    expect(metrics).toContain('atlassian_connections{status="active"} 1');
    expect(metrics).toContain('atlassian_connections{status="reauth_required"} 0');
    expect(metrics).toContain('atlassian_access_tokens_expiring_soon 0');
    expect(metrics).toContain('atlassian_token_refresh_oldest_due_seconds 0');
    expect(metrics).toContain('atlassian_token_refresh_leases_recovered_total 0');
    expect(metrics).toContain('atlassian_client_credentials_rejected 0');
    expect(metrics).toContain('process_resident_memory_bytes');
    expect(metrics).toMatch(
      /http_request_duration_seconds_count\{method="POST",route="\/v1\/users\/:userId\/access-token",status_code="200"\} 1/,
    );
    expect(metrics).not.toContain('scheduled-user');
    expect(metrics).not.toContain(id);
    expect(metrics).not.toContain(accessToken);
  }, 30_000);

  it('with a wrong client secret: nobody marked, refreshing paused, and readiness says why', async () => {
    const service = await start({ ATLASSIAN_CLIENT_ID: 'sandbox-client-id', ATLASSIAN_CLIENT_SECRET: 'wrong-secret' });
    const id = await seedDue(service, 'innocent-user');
    const ready = await eventually(
      async () =>
        (await (await fetch(`${service.baseUrl}/health/ready`)).json()) as {
          status: string;
          details: Record<string, { status: string; message?: string }>;
        },
      (body) => body.details.refresh?.status === 'degraded',
    );
    expect(ready.status).toBe('degraded');
    expect(ready.details.database.status).toBe('up');
    expect(ready.details.refresh.message).toContain('ATLASSIAN_CLIENT_SECRET');
    expect((await fetch(`${service.baseUrl}/health/ready`)).status).toBe(200);
    expect(await (await fetch(`${service.baseUrl}/metrics`)).text()).toContain('atlassian_client_credentials_rejected 1');
    expect(await version(service, id)).toEqual({ version: 1, status: 'active' });

    // Paused: more cycles of the job (run here rather than waited for) present nothing more.
    const calls = sandbox.idp.stats().tokenCalls.refresh_token;
    await service.app.get(RefreshScheduler).tick();
    await service.app.get(RefreshScheduler).tick();
    expect(sandbox.idp.stats().tokenCalls.refresh_token).toBe(calls);
  }, 30_000);

  describe('shutdown', () => {
    let database: TestDatabase;
    beforeAll(async () => {
      database = await createTestDatabase();
    }, 30_000);
    afterAll(async () => {
      await database?.drop();
    });

    it('finishes a refresh that is talking to Atlassian before the service stops', async () => {
      const service = await start({}, database.url);
      sandbox.idp.setLatency({ tokenMs: 1_500 });
      const id = await seedDue(service, 'mid-flight');
      await eventually(
        async () => sandbox.idp.stats().refreshesInFlight,
        (n) => n === 1,
      );

      await service.close();
      app = undefined;

      const client = new pg.Client({ connectionString: database.url });
      await client.connect();
      try {
        const { rows } = await client.query('SELECT version, lease_id, refresh_attempted_at FROM connections WHERE id = $1', [id]);
        expect(rows[0]).toEqual({ version: 2, lease_id: null, refresh_attempted_at: null });
      } finally {
        await client.end();
      }
      expect(sandbox.idp.stats()).toMatchObject({ refreshes: 1, refreshesInFlight: 0 });
    }, 30_000);
  });
});
