import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { createTestDatabase, describePostgres, type TestDatabase } from '../utils/database.js';
import { startTestApp, TEST_API_KEY, type TestApp } from '../utils/app.js';
import { eventually } from '../utils/eventually.js';
import { TcpProxy } from '../utils/tcp-proxy.js';

async function ready(app: TestApp): Promise<number> {
  return (await fetch(`${app.baseUrl}/health/ready`)).status;
}

describePostgres('readiness follows the database', () => {
  let database: TestDatabase;
  let proxy: TcpProxy;
  let app: TestApp;

  beforeAll(async () => {
    database = await createTestDatabase();
    const target = new URL(database.url);
    proxy = new TcpProxy(target.hostname, Number(target.port || 5432));
    const proxyPort = await proxy.listen();
    target.host = `127.0.0.1:${proxyPort}`;
    app = await startTestApp({ databaseUrl: target.toString() });
  });

  afterAll(async () => {
    await app?.close();
    await proxy?.close();
    await database?.drop();
  });

  it('is live and ready once migrations ran', async () => {
    expect((await fetch(`${app.baseUrl}/health/live`)).status).toBe(200);
    const response = await fetch(`${app.baseUrl}/health/ready`);
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({ status: 'ok', details: { database: { status: 'up' } } });
  });

  it('answers 503 while the database is unreachable and 200 again when it is back, without a restart', async () => {
    proxy.cut();
    await eventually(
      () => ready(app),
      (status) => status === 503,
    );
    const down = await fetch(`${app.baseUrl}/health/ready`);
    expect(down.status).toBe(503);
    expect(await down.json()).toMatchObject({ status: 'error', details: { database: { status: 'down' } } });
    expect((await fetch(`${app.baseUrl}/health/live`)).status).toBe(200);
    const api = await fetch(`${app.baseUrl}/v1/users/someone/connection`, { headers: { Authorization: `Bearer ${TEST_API_KEY}` } });
    expect(api.status).toBe(503);
    expect(api.headers.get('retry-after')).toBe('5');
    expect(await api.json()).toMatchObject({ error: { code: 'database_unavailable' } });

    proxy.restore();
    await eventually(
      () => ready(app),
      (status) => status === 200,
    );
  });
});
