import { afterAll, beforeAll, beforeEach, expect, it } from '@jest/globals';
import { callApi, userPath } from '../utils/api.js';
import { startTestApp, type TestApp } from '../utils/app.js';
import { ManualClock } from '../utils/connections.js';
import { describePostgres } from '../utils/database.js';
import { connectionRows, connectUser, sandboxControl } from './connect-browser.js';

const DAY = 86_400_000;

interface Connection {
  status: string;
  consentedAt: string;
  consentExpiresAt: string;
  lastError: string | null;
}

describePostgres('the consent clock of a connection', () => {
  const clock = new ManualClock();
  let app: TestApp;

  beforeAll(async () => {
    app = await startTestApp({ clock, env: { REFRESH_INTERVAL_SECONDS: '3600' } });
  }, 60_000);
  afterAll(() => app?.close());
  beforeEach(() => sandboxControl(app, 'reset'));

  async function connected(userId: string, login: string): Promise<void> {
    const { response } = await connectUser(app, userId, login);
    expect(response.status).toBe(200);
  }

  async function connection(userId: string): Promise<Connection> {
    const response = await callApi(app, 'GET', userPath(userId, '/connection'));
    expect(response.status).toBe(200);
    return (await response.json()) as Connection;
  }

  it('starts at consent, ends 365 days later, and a reconnect starts it again on the same connection and sites', async () => {
    const consentedAt = clock.now();
    await connected('clocked', 'alice');
    expect(await connection('clocked')).toMatchObject({
      consentedAt: consentedAt.toISOString(),
      consentExpiresAt: new Date(consentedAt.getTime() + 365 * DAY).toISOString(),
    });
    const [before] = await connectionRows(app, 'clocked');
    const sitesBefore = await (await callApi(app, 'GET', userPath('clocked', '/accessible-resources'))).json();

    const reconsentedAt = clock.advance(300 * DAY);
    await connected('clocked', 'alice');
    expect(await connection('clocked')).toMatchObject({
      status: 'active',
      consentedAt: reconsentedAt.toISOString(),
      consentExpiresAt: new Date(reconsentedAt.getTime() + 365 * DAY).toISOString(),
    });
    const [after] = await connectionRows(app, 'clocked');
    expect(after.id).toBe(before.id);
    expect(await (await callApi(app, 'GET', userPath('clocked', '/accessible-resources'))).json()).toMatchObject({
      resources: (sitesBefore as { resources: unknown[] }).resources,
    });
  });
});
