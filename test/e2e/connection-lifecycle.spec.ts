import { afterAll, afterEach, beforeAll, beforeEach, expect, it } from '@jest/globals';
import { SystemClock } from '../../src/common/clock.js';
import { TokenCipher } from '../../src/crypto/token-cipher.js';
import { LifecycleScheduler } from '../../src/lifecycle/lifecycle.scheduler.js';
import { RefreshService } from '../../src/refresh/refresh.service.js';
import { callApi, errorOf, userPath } from '../utils/api.js';
import { startTestApp, type TestApp } from '../utils/app.js';
import { ManualClock, outboxEvents, seedConnection } from '../utils/connections.js';
import { createTestDatabase, describePostgres, type TestDatabase } from '../utils/database.js';
import { eventually } from '../utils/eventually.js';
import { connectionRows, connectUser, consent, dataSourceOf, sandboxControl, startSignIn, TestBrowser } from './connect-browser.js';

const DAY = 86_400_000;
const MINUTE = 60_000;

/** Events written in one transaction share their time; among those, the order in which the service writes them. */
const WRITE_ORDER = ['connection.created', 'connection.reconsent_due', 'connection.scopes_outdated', 'connection.reauth_required'];

/** The webhook events written for a user so far, oldest first. */
async function eventsOf(app: TestApp, userId: string): Promise<Record<string, unknown>[]> {
  const bodies = (await outboxEvents(dataSourceOf(app))).filter((event) => event.userId === userId).map((event) => event.body);
  const key = (body: Record<string, unknown>) => [body.at as string, WRITE_ORDER.indexOf(body.type as string)] as const;
  return bodies.sort((a, b) => {
    const [atA, orderA] = key(a);
    const [atB, orderB] = key(b);
    return atA === atB ? orderA - orderB : atA < atB ? -1 : 1;
  });
}

const typesOf = (events: Record<string, unknown>[]) => events.map((event) => event.type);

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

describePostgres('the end of a grant', () => {
  const clock = new ManualClock();
  let app: TestApp;

  beforeAll(async () => {
    app = await startTestApp({ clock, env: { REFRESH_INTERVAL_SECONDS: '3600' } });
  }, 60_000);
  afterAll(() => app?.close());
  beforeEach(() => sandboxControl(app, 'reset'));

  const refreshDue = () => app.app.get(RefreshService).runDueRefreshes();

  it('without a reconnect, 365 days after consent: reauth_required, saying the yearly consent ran out', async () => {
    const consentedAt = clock.now();
    expect((await connectUser(app, 'year-long', 'alice')).response.status).toBe(200);
    // The daemon keeps the connection alive all year; refreshes do not move the consent's end.
    for (let day = 60; day <= 360; day += 60) {
      clock.set(new Date(consentedAt.getTime() + day * DAY));
      expect(await refreshDue()).toMatchObject({ refreshed: 1 });
    }
    clock.set(new Date(consentedAt.getTime() + 365 * DAY + MINUTE));
    expect(await refreshDue()).toMatchObject({ reauthRequired: 1 });

    const connection = (await (await callApi(app, 'GET', userPath('year-long', '/connection'))).json()) as Connection;
    expect(connection.status).toBe('reauth_required');
    expect(connection.lastError).toBe(
      `The user's yearly consent ran out: Atlassian ends every grant a year after the user consents (this one on ${consentedAt.toISOString()}) ` +
        'and now refuses it; the user must connect again.',
    );
    expect(connection.lastError).not.toMatch(/revoked/i);
    expect((await eventsOf(app, 'year-long')).at(-1)).toMatchObject({ type: 'connection.reauth_required', reason: 'consent_expired' });
  }, 60_000);

  it('revoked by the user mid-year: reauth_required with what Atlassian said', async () => {
    expect((await connectUser(app, 'walked-away', 'bob')).response.status).toBe(200);
    const [row] = await connectionRows(app, 'walked-away');
    await sandboxControl(app, `grants/${row.atlassian_account_id as string}/revoke`);
    clock.advance(100 * DAY);
    expect(await refreshDue()).toMatchObject({ reauthRequired: 1 });
    const connection = (await (await callApi(app, 'GET', userPath('walked-away', '/connection'))).json()) as Connection;
    expect(connection.lastError).toContain('invalid_grant');
    expect(connection.lastError).not.toContain('consent ran out');
    expect((await eventsOf(app, 'walked-away')).at(-1)).toMatchObject({ type: 'connection.reauth_required', reason: 'invalid_grant' });
  }, 60_000);
});

describePostgres('GET /v1/connections?reconsentDueBefore=', () => {
  const clock = new ManualClock('2027-01-01T00:00:00.000Z');
  let app: TestApp;

  beforeAll(async () => {
    app = await startTestApp({ clock, env: { REFRESH_INTERVAL_SECONDS: '3600' } });
    const consents: [string, number, string?][] = [
      ['a-ends-in-1-day', 1],
      ['b-ends-in-10-days', 10],
      ['c-ends-in-13-days', 13],
      ['d-ends-in-20-days', 20],
      ['e-ended-2-days-ago', -2],
      ['f-gone', 5, 'reauth_required'],
    ];
    for (const [userId, endsInDays, status] of consents) {
      await seedConnection(dataSourceOf(app), app.app.get(TokenCipher), clock, {
        userId,
        status: status as 'reauth_required' | undefined,
        accessToken: 'at',
        refreshToken: 'rt',
        accessTokenExpiresAt: new Date(clock.now().getTime() + 60 * MINUTE),
        consentedAt: new Date(clock.now().getTime() + (endsInDays - 365) * DAY),
      });
    }
  }, 60_000);
  afterAll(() => app?.close());

  async function listed(query: string): Promise<{ items: { userId: string; consentExpiresAt: string }[]; nextCursor: string | null }> {
    const response = await callApi(app, 'GET', `/v1/connections${query}`);
    expect(response.status).toBe(200);
    return (await response.json()) as { items: { userId: string; consentExpiresAt: string }[]; nextCursor: string | null };
  }

  it('lists the connections whose consent ends before the time, in pages that keep the filter', async () => {
    const before = new Date(clock.now().getTime() + 14 * DAY).toISOString();
    const first = await listed(`?reconsentDueBefore=${before}&limit=2`);
    expect(first.items.map((item) => item.userId)).toEqual(['a-ends-in-1-day', 'b-ends-in-10-days']);
    const second = await listed(`?reconsentDueBefore=${before}&limit=2&cursor=${first.nextCursor}`);
    expect(second.items.map((item) => item.userId)).toEqual(['c-ends-in-13-days', 'e-ended-2-days-ago']);
    const last = await listed(`?reconsentDueBefore=${before}&limit=2&cursor=${second.nextCursor}`);
    expect(last).toEqual({ items: [expect.objectContaining({ userId: 'f-gone' })], nextCursor: null });
    for (const item of [...first.items, ...second.items, ...last.items]) expect(item.consentExpiresAt < before).toBe(true);

    expect((await listed(`?reconsentDueBefore=${before}&status=active`)).items).toHaveLength(4);
    expect((await listed(`?reconsentDueBefore=2027-01-01T00:00:00Z`)).items.map((item) => item.userId)).toEqual(['e-ended-2-days-ago']);
    expect(await errorOf(await callApi(app, 'GET', `/v1/connections?cursor=${first.nextCursor}`))).toEqual([400, 'invalid_request']);
  });

  it('counts on /metrics the connections whose consent ends within 14 days (or has ended), reauth_required aside', async () => {
    const metrics = await (await fetch(`${app.baseUrl}/metrics`)).text();
    expect(metrics).toContain('# TYPE atlassian_connections_reconsent_due gauge');
    expect(metrics).toMatch(/^atlassian_connections_reconsent_due 4$/m);
  });

  it('takes a date alone as its midnight UTC', async () => {
    expect((await listed('?reconsentDueBefore=2027-01-03')).items.map((item) => item.userId)).toEqual([
      'a-ends-in-1-day',
      'e-ended-2-days-ago',
    ]);
  });

  it.each([
    ['not a time', 'soon'],
    ['a time without its offset from UTC', '2027-01-01T00:00:00'],
    ['an impossible date', '2027-02-30T00:00:00Z'],
  ])('answers 400 with one message for %s', async (_, value) => {
    const response = await callApi(app, 'GET', `/v1/connections?reconsentDueBefore=${value}`);
    expect(response.status).toBe(400);
    expect(await response.json()).toEqual({
      error: { code: 'invalid_request', message: 'reconsentDueBefore must be an ISO 8601 time, e.g. 2027-03-02T09:00:00Z' },
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
    // Checked at connect, in the consent's own transaction: no tick needed.
    expect(await eventsOf(app, 'under-scoped')).toEqual([
      expect.objectContaining({ type: 'connection.created' }),
      {
        id: expect.any(String),
        type: 'connection.scopes_outdated',
        userId: 'under-scoped',
        at: clock.now().toISOString(),
        atlassianAccountId: expect.any(String),
        consentedAt: clock.now().toISOString(),
        missingScopes: ['write:jira-work'],
      },
    ]);
    await app.app.get(LifecycleScheduler).tick();
    expect(await eventsOf(app, 'under-scoped')).toHaveLength(2);
    const listed = (await (await callApi(app, 'GET', '/v1/connections')).json()) as { items: Record<string, unknown>[] };
    expect(listed.items.find((item) => item.userId === 'under-scoped')).toMatchObject({ missingScopes: ['write:jira-work'] });

    clock.advance(MINUTE);
    const asked = await connectedWith('under-scoped');
    expect(asked.searchParams.get('scope')!.split(' ').sort()).toEqual(['offline_access', 'read:jira-work', 'read:me', 'write:jira-work']);
    expect(await missing('under-scoped')).toEqual([]);
    await app.app.get(LifecycleScheduler).tick();
    expect(typesOf(await eventsOf(app, 'under-scoped'))).toEqual([
      'connection.created',
      'connection.scopes_outdated',
      'connection.created',
    ]);

    // Once per consent: a later consent that lacks the same scopes is told again.
    clock.advance(MINUTE);
    await connectedWith('under-scoped', 'read:jira-work offline_access read:me');
    expect(typesOf(await eventsOf(app, 'under-scoped')).slice(3)).toEqual(['connection.created', 'connection.scopes_outdated']);
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
    await wider.app.get(LifecycleScheduler).idle();
    const body = (await (await callApi(wider, 'GET', userPath('rescoped', '/connection'))).json()) as Record<string, unknown>;
    expect(body).toMatchObject({ status: 'active', missingScopes: ['write:jira-work'] });
    // Told at start, and once: not again by the next start with the same scopes.
    expect(await eventsOf(wider, 'rescoped')).toEqual([
      expect.objectContaining({ type: 'connection.created' }),
      expect.objectContaining({ type: 'connection.scopes_outdated', missingScopes: ['write:jira-work'] }),
    ]);
    await wider.close();
    const again = await start('read:jira-work write:jira-work');
    await again.app.get(LifecycleScheduler).tick();
    expect(await eventsOf(again, 'rescoped')).toHaveLength(2);
    await again.close();

    const back = await start('read:jira-work');
    await back.app.get(LifecycleScheduler).idle();
    expect(await (await callApi(back, 'GET', userPath('rescoped', '/connection'))).json()).toMatchObject({ missingScopes: [] });
  }, 60_000);
});

describePostgres('connection.reconsent_due', () => {
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

  async function start(): Promise<TestApp> {
    app = await startTestApp({ clock, databaseUrl: database.url, env: { REFRESH_INTERVAL_SECONDS: '3600', RECONSENT_WARNING_DAYS: '14' } });
    return app;
  }

  it('is sent once per consent when less than RECONSENT_WARNING_DAYS remain, also across restarts, and again after a reconnect', async () => {
    let service = await start();
    const consentedAt = clock.now();
    expect((await connectUser(service, 'yearly', 'alice')).response.status).toBe(200);
    const tick = () => service.app.get(LifecycleScheduler).tick();

    clock.set(new Date(consentedAt.getTime() + 351 * DAY));
    await tick();
    expect(typesOf(await eventsOf(service, 'yearly'))).toEqual(['connection.created']);

    // Checked at start: the service was down when the warning began.
    await service.close();
    clock.advance(MINUTE);
    service = await start();
    await service.app.get(LifecycleScheduler).idle();
    expect(await eventsOf(service, 'yearly')).toEqual([
      expect.objectContaining({ type: 'connection.created' }),
      {
        id: expect.any(String),
        type: 'connection.reconsent_due',
        userId: 'yearly',
        at: clock.now().toISOString(),
        atlassianAccountId: expect.any(String),
        consentedAt: consentedAt.toISOString(),
        consentExpiresAt: new Date(consentedAt.getTime() + 365 * DAY).toISOString(),
      },
    ]);

    await tick();
    await service.close();
    service = await start();
    await tick();
    expect(await eventsOf(service, 'yearly')).toHaveLength(2);

    const reconsentedAt = clock.advance(MINUTE);
    expect((await connectUser(service, 'yearly', 'alice')).response.status).toBe(200);
    await tick();
    expect(typesOf(await eventsOf(service, 'yearly'))).toEqual(['connection.created', 'connection.reconsent_due', 'connection.created']);

    clock.set(new Date(reconsentedAt.getTime() + 352 * DAY));
    await tick();
    expect((await eventsOf(service, 'yearly'))[3]).toMatchObject({
      type: 'connection.reconsent_due',
      consentedAt: reconsentedAt.toISOString(),
      consentExpiresAt: new Date(reconsentedAt.getTime() + 365 * DAY).toISOString(),
    });
  }, 60_000);
});

describePostgres('the lifecycle checks in the running service', () => {
  let app: TestApp;

  beforeAll(async () => {
    app = await startTestApp({ env: { REFRESH_INTERVAL_SECONDS: '1' } });
  }, 60_000);
  afterAll(() => app?.close());

  it('run every REFRESH_INTERVAL_SECONDS', async () => {
    await seedConnection(dataSourceOf(app), app.app.get(TokenCipher), new SystemClock(), {
      userId: 'ticked',
      accessToken: 'at',
      refreshToken: 'rt',
      accessTokenExpiresAt: new Date(Date.now() + 60 * MINUTE),
      consentedAt: new Date(Date.now() - 360 * DAY),
    });
    await eventually(
      async () => typesOf(await eventsOf(app, 'ticked')),
      (types) => types.includes('connection.reconsent_due'),
    );
  }, 30_000);
});
