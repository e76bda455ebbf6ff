import { afterAll, afterEach, beforeAll, beforeEach, expect, it } from '@jest/globals';
import { callApi, userPath } from '../utils/api.js';
import { startTestApp, type TestApp } from '../utils/app.js';
import { ManualClock } from '../utils/connections.js';
import { createTestDatabase, describePostgres, type TestDatabase } from '../utils/database.js';
import { connectionRows, connectUser, consent, sandboxControl, startSignIn, TestBrowser } from './connect-browser.js';

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

describePostgres('the scopes a connection lacks', () => {
  const clock = new ManualClock();
  let app: TestApp;

  beforeAll(async () => {
    app = await startTestApp({ clock, env: { REFRESH_INTERVAL_SECONDS: '3600', ATLASSIAN_SCOPES: 'read:jira-work write:jira-work' } });
  }, 60_000);
  afterAll(() => app?.close());
  beforeEach(() => sandboxControl(app, 'reset'));

  /** The user consents to `scope` instead of what the connect link asked for (as when Atlassian grants less). */
  async function connectedWith(userId: string, scope?: string): Promise<URL> {
    const browser = new TestBrowser(app);
    const signIn = await startSignIn(app, browser, userId);
    const asked = new URL(signIn.authorizeUrl);
    if (scope !== undefined) signIn.authorizeUrl.searchParams.set('scope', scope);
    const response = await browser.get(await consent(signIn.authorizeUrl, { user: 'bob' }));
    expect(response.status).toBe(200);
    return asked;
  }

  async function missing(userId: string): Promise<string[]> {
    return ((await (await callApi(app, 'GET', userPath(userId, '/connection'))).json()) as { missingScopes: string[] }).missingScopes;
  }

  it('lists what the configuration asks for and the grant lacks; a new connect link asks for all of it', async () => {
    await connectedWith('under-scoped', 'read:jira-work offline_access read:me');
    expect(await missing('under-scoped')).toEqual(['write:jira-work']);
    const listed = (await (await callApi(app, 'GET', '/v1/connections')).json()) as { items: Record<string, unknown>[] };
    expect(listed.items.find((item) => item.userId === 'under-scoped')).toMatchObject({ missingScopes: ['write:jira-work'] });

    const asked = await connectedWith('under-scoped');
    expect(asked.searchParams.get('scope')!.split(' ').sort()).toEqual(['offline_access', 'read:jira-work', 'read:me', 'write:jira-work']);
    expect(await missing('under-scoped')).toEqual([]);
  });

  it('ignores scopes granted beyond those asked for', async () => {
    await connectedWith('over-scoped', 'read:jira-work write:jira-work offline_access read:me read:jira-user');
    expect(await missing('over-scoped')).toEqual([]);
  });
});

describePostgres('the scopes a connection lacks, when ATLASSIAN_SCOPES changes', () => {
  const clock = new ManualClock();
  let database: TestDatabase;
  let app: TestApp | undefined;

  beforeAll(async () => {
    database = await createTestDatabase();
  }, 30_000);
  afterEach(async () => {
    await app?.close();
    app = undefined;
  });
  afterAll(() => database?.drop());

  async function start(scopes: string): Promise<TestApp> {
    app = await startTestApp({ clock, databaseUrl: database.url, env: { REFRESH_INTERVAL_SECONDS: '3600', ATLASSIAN_SCOPES: scopes } });
    return app;
  }

  it('are recomputed at start', async () => {
    const first = await start('read:jira-work');
    expect((await connectUser(first, 'rescoped', 'alice')).response.status).toBe(200);
    await first.close();

    const wider = await start('read:jira-work write:jira-work');
    const body = (await (await callApi(wider, 'GET', userPath('rescoped', '/connection'))).json()) as Record<string, unknown>;
    expect(body).toMatchObject({ status: 'active', missingScopes: ['write:jira-work'] });
    await wider.close();

    const back = await start('read:jira-work');
    expect(await (await callApi(back, 'GET', userPath('rescoped', '/connection'))).json()).toMatchObject({ missingScopes: [] });
  }, 60_000);
});
