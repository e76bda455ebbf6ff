import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { TokenCipher } from '../../src/crypto/token-cipher.js';
import { hashSecret } from '../../src/oauth/secrets.js';
import { SandboxIdentityProvider } from '../../src/sandbox/sandbox.idp.js';
import { accountIdFor } from '../../src/sandbox/sandbox.users.js';
import { startTestApp, type TestApp } from '../utils/app.js';
import {
  connectionRows,
  connectUser,
  consent,
  dataSourceOf,
  sandboxControl,
  sandboxStats,
  startSignIn,
  stateOutcome,
  TestBrowser,
} from './connect-browser.js';

async function resources(app: TestApp, connectionId: string): Promise<{ cloud_id: string; name: string; first_seen_at: Date }[]> {
  return dataSourceOf(app).query(`SELECT cloud_id, name, first_seen_at FROM accessible_resources WHERE connection_id = $1 ORDER BY name`, [
    connectionId,
  ]);
}

async function createdEvents(app: TestApp, userId: string): Promise<Record<string, unknown>[]> {
  const rows: { body: string }[] = await dataSourceOf(app).query(
    `SELECT body FROM webhook_outbox WHERE user_id = $1 AND type = 'connection.created' ORDER BY created_at`,
    [userId],
  );
  return rows.map((r) => JSON.parse(r.body) as Record<string, unknown>);
}

function openTokens(app: TestApp, row: Record<string, unknown>): { accessToken: string; refreshToken: string } {
  const cipher = app.app.get(TokenCipher);
  const rowId = row.id as string;
  return {
    accessToken: cipher.open(
      { ciphertext: row.access_token_ciphertext as string, keyId: row.access_token_key_id as string },
      { table: 'connections', rowId, column: 'access_token' },
    ),
    refreshToken: cipher.open(
      { ciphertext: row.refresh_token_ciphertext as string, keyId: row.refresh_token_key_id as string },
      { table: 'connections', rowId, column: 'refresh_token' },
    ),
  };
}

describe('connecting a user through the browser, against the sandbox', () => {
  let app: TestApp;

  beforeAll(async () => {
    app = await startTestApp();
  });
  afterAll(() => app?.close());
  beforeEach(() => sandboxControl(app, 'reset'));

  it('mints a single-use connect link on the service’s public URL', async () => {
    const response = await fetch(`${app.baseUrl}/v1/users/link-user/connect`, {
      method: 'POST',
      headers: { Authorization: 'Bearer test-api-key-0123456789abcdef' },
    });
    expect(response.status).toBe(201);
    const body = (await response.json()) as { url: string; expiresAt: string };
    expect(body.url).toMatch(new RegExp(`^${app.baseUrl}/auth/atlassian/start\\?ticket=[A-Za-z0-9_-]{43}$`));
    expect(new Date(body.expiresAt).getTime() - Date.now()).toBeGreaterThan(9 * 60_000);
    expect(new Date(body.expiresAt).getTime() - Date.now()).toBeLessThanOrEqual(10 * 60_000);
    const ticket = new URL(body.url).searchParams.get('ticket')!;
    const stored: { ticket_hash: string }[] = await dataSourceOf(app).query(
      `SELECT ticket_hash FROM connect_tickets WHERE user_id = 'link-user'`,
    );
    expect(stored).toEqual([{ ticket_hash: hashSecret(ticket) }]);
  });

  it('sends the browser to /authorize with every parameter Atlassian needs and a browser cookie', async () => {
    const browser = new TestBrowser(app);
    const { authorizeUrl, state } = await startSignIn(app, browser, 'params-user');
    expect(`${authorizeUrl.origin}${authorizeUrl.pathname}`).toBe(`${app.config.atlassian.authUrl}/authorize`);
    const params = Object.fromEntries(authorizeUrl.searchParams);
    expect(params).toEqual({
      audience: 'api.atlassian.com',
      client_id: app.config.atlassian.clientId,
      scope: expect.any(String),
      redirect_uri: app.config.atlassian.callbackUrl,
      state: expect.stringMatching(/^[A-Za-z0-9_-]{43}$/),
      response_type: 'code',
      prompt: 'consent',
    });
    expect(params.scope.split(' ')).toEqual(expect.arrayContaining(['offline_access', 'read:me', 'read:jira-work']));
    expect(browser.cookie('atlassian_connect_browser')).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const rows: { user_id: string; browser_hash: string; redirect_uri: string }[] = await dataSourceOf(app).query(
      `SELECT user_id, browser_hash, redirect_uri FROM oauth_states WHERE state_hash = $1`,
      [hashSecret(state)],
    );
    expect(rows).toEqual([
      {
        user_id: 'params-user',
        browser_hash: hashSecret(browser.cookie('atlassian_connect_browser')!),
        redirect_uri: app.config.atlassian.callbackUrl,
      },
    ]);
  });

  it('sets the browser cookie HttpOnly, SameSite=Lax, on the browser routes only', async () => {
    const link = await (
      await fetch(`${app.baseUrl}/v1/users/cookie-user/connect`, {
        method: 'POST',
        headers: { Authorization: 'Bearer test-api-key-0123456789abcdef' },
      })
    ).json();
    const response = await fetch((link as { url: string }).url, { redirect: 'manual' });
    const [cookie] = response.headers.getSetCookie();
    expect(cookie).toMatch(/^atlassian_connect_browser=[A-Za-z0-9_-]{43}; /);
    expect(cookie).toContain('Path=/auth/atlassian');
    expect(cookie).toContain('HttpOnly');
    expect(cookie).toContain('SameSite=Lax');
    expect(cookie).not.toContain('Secure');
    expect(response.headers.get('cache-control')).toBe('no-store');
    expect(response.headers.get('referrer-policy')).toBe('no-referrer');
  });

  it.each([
    ['carol', 0, []],
    ['bob', 1, ['acme']],
    ['alice', 3, ['acme', 'alice-labs', 'umbrella']],
  ])('connects %s with %i sites, stores the tokens encrypted and queues connection.created', async (login, count, names) => {
    const userId = `user-${login}`;
    const { response, callbackUrl, signIn, browser } = await connectUser(app, userId, login);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^text\/html/);
    const html = await response.text();
    expect(html).toContain('Your Atlassian account is connected');
    for (const name of names) expect(html).toContain(`${name}.atlassian.net`);
    for (const secret of [
      callbackUrl.searchParams.get('code')!,
      signIn.state,
      signIn.ticket,
      browser.cookie('atlassian_connect_browser')!,
    ]) {
      expect(html).not.toContain(secret);
    }

    const [row] = await connectionRows(app, userId);
    expect(row).toMatchObject({
      status: 'active',
      atlassian_account_id: accountIdFor(login),
      version: 1,
      lease_id: null,
      consecutive_failures: 0,
      last_error: null,
    });
    expect(row.scopes).toEqual(expect.arrayContaining(['offline_access', 'read:me']));
    const expiresAt = (row.access_token_expires_at as Date).getTime();
    const refreshedAt = (row.last_refreshed_at as Date).getTime();
    expect(expiresAt - refreshedAt).toBe(3600 * 1000);
    expect((row.due_at as Date).getTime()).toBe(expiresAt - app.config.refresh.leadSeconds * 1000);
    expect((await resources(app, row.id as string)).map((r) => r.name)).toEqual(names);
    expect(await createdEvents(app, userId)).toEqual([
      expect.objectContaining({ type: 'connection.created', userId, atlassianAccountId: accountIdFor(login), siteCount: count }),
    ]);
    expect(await stateOutcome(app, hashSecret(signIn.state))).toBe('connected');
    expect((await sandboxStats(app)).codesExchanged).toBe(1);
  });

  it('serves the result page with security headers and without anything external', async () => {
    const { response } = await connectUser(app, 'headers-user', 'bob');
    const csp = response.headers.get('content-security-policy')!;
    expect(csp).toContain("default-src 'none'");
    expect(csp).toMatch(/style-src 'sha256-[A-Za-z0-9+/=]+'/);
    expect(csp).toContain("frame-ancestors 'none'");
    expect(response.headers.get('cache-control')).toBe('no-store');
    expect(response.headers.get('referrer-policy')).toBe('no-referrer');
    expect(response.headers.get('x-content-type-options')).toBe('nosniff');
    const html = await response.text();
    expect(html).not.toMatch(/<script|<link|<img|src=|https?:\/\/(?!\w+\.atlassian\.net)/);
    expect(html).toContain('<meta name="viewport"');
  });

  it('keeps only ciphertext in the database, sealed for its own row, of the tokens the sandbox issued', async () => {
    await connectUser(app, 'cipher-user', 'bob');
    const [row] = await connectionRows(app, 'cipher-user');
    const { accessToken, refreshToken } = openTokens(app, row);
    expect(accessToken).toMatch(/^sbx_at_/);
    expect(refreshToken).toMatch(/^sbx_rt_/);
    const everything = JSON.stringify(await dataSourceOf(app).query(`SELECT * FROM connections`));
    const outbox = JSON.stringify(await dataSourceOf(app).query(`SELECT * FROM webhook_outbox`));
    for (const token of [accessToken, refreshToken]) {
      expect(everything).not.toContain(token);
      expect(outbox).not.toContain(token);
      expect(Buffer.from(row.access_token_ciphertext as string, 'base64').toString('latin1')).not.toContain(token);
    }
    // The stored access token is the one the sandbox issued: its /me answers for bob.
    const me = await fetch(`${app.baseUrl}/sandbox/me`, { headers: { Authorization: `Bearer ${accessToken}` } });
    expect(me.status).toBe(200);
    expect(((await me.json()) as { account_id: string }).account_id).toBe(accountIdFor('bob'));
  });

  it('reconnecting replaces the tokens, the account and the sites of the same row, and makes it active again', async () => {
    await connectUser(app, 'reconnect-user', 'alice');
    const [first] = await connectionRows(app, 'reconnect-user');
    const firstSites = await resources(app, first.id as string);
    await dataSourceOf(app).query(
      `UPDATE connections SET status = 'reauth_required', consecutive_failures = 3, last_error = 'invalid_grant', lease_id = gen_random_uuid(), lease_owner = 'worker-1' WHERE id = $1`,
      [first.id],
    );

    const { response } = await connectUser(app, 'reconnect-user', 'bob');
    expect(response.status).toBe(200);
    const rows = await connectionRows(app, 'reconnect-user');
    expect(rows).toHaveLength(1);
    const [second] = rows;
    expect(second).toMatchObject({
      id: first.id,
      status: 'active',
      version: 2,
      atlassian_account_id: accountIdFor('bob'),
      consecutive_failures: 0,
      last_error: null,
      lease_id: null,
      lease_owner: null,
    });
    expect(second.access_token_ciphertext).not.toBe(first.access_token_ciphertext);
    expect(openTokens(app, second).refreshToken).not.toBe(openTokens(app, first).refreshToken);
    const secondSites = await resources(app, first.id as string);
    expect(secondSites.map((s) => s.name)).toEqual(['acme']);
    // acme was known from alice's consent: it keeps the time it was first seen.
    expect(secondSites[0].first_seen_at).toEqual(firstSites.find((s) => s.name === 'acme')!.first_seen_at);
    expect(await createdEvents(app, 'reconnect-user')).toHaveLength(2);
  });

  it('keeps one Atlassian account connected by two users apart', async () => {
    await connectUser(app, 'first-of-two', 'alice');
    await connectUser(app, 'second-of-two', 'alice');
    const [a] = await connectionRows(app, 'first-of-two');
    const [b] = await connectionRows(app, 'second-of-two');
    expect(a.id).not.toBe(b.id);
    expect(a.atlassian_account_id).toBe(b.atlassian_account_id);
    expect(openTokens(app, a).accessToken).not.toBe(openTokens(app, b).accessToken);
  });

  it('exchanges a code once when the callback arrives twice at the same moment', async () => {
    const browser = new TestBrowser(app);
    const { authorizeUrl } = await startSignIn(app, browser, 'double-user');
    const callbackUrl = await consent(authorizeUrl, { user: 'bob' });
    // The code exchange takes 300 ms, so the second callback arrives while the first is still exchanging, however
    // slowly the machine runs the two requests (once the first has finished, its browser is shown its result again).
    const sandbox = app.app.get(SandboxIdentityProvider);
    const latency = sandbox.setLatency({});
    sandbox.setLatency({ tokenMs: 300 });
    const responses = await Promise.all([browser.get(callbackUrl), browser.get(callbackUrl)]).finally(() => sandbox.setLatency(latency));
    expect(responses.map((r) => r.status).sort()).toEqual([200, 409]);
    const loser = responses.find((r) => r.status === 409)!;
    expect(await loser.text()).toContain('This sign-in link was already used');
    const stats = await sandboxStats(app);
    expect(stats.tokenCalls.authorization_code).toBe(1);
    expect(stats.codeReuse).toBe(0);
    expect(await connectionRows(app, 'double-user')).toHaveLength(1);
    expect(await createdEvents(app, 'double-user')).toHaveLength(1);
  });

  it('lets a browser run two sign-ins side by side (the cookie is kept, not replaced)', async () => {
    const browser = new TestBrowser(app);
    const first = await startSignIn(app, browser, 'tab-user-1');
    const cookie = browser.cookie('atlassian_connect_browser');
    const second = await startSignIn(app, browser, 'tab-user-2');
    expect(browser.cookie('atlassian_connect_browser')).toBe(cookie);
    expect((await browser.get(await consent(second.authorizeUrl, { user: 'bob' }))).status).toBe(200);
    expect((await browser.get(await consent(first.authorizeUrl, { user: 'carol' }))).status).toBe(200);
  });
});

describe('connecting with CONNECT_SUCCESS_URL and CONNECT_FAILURE_URL set', () => {
  let app: TestApp;

  beforeAll(async () => {
    app = await startTestApp({
      env: { CONNECT_SUCCESS_URL: 'https://saas.example/connected?from=atlassian', CONNECT_FAILURE_URL: 'https://saas.example/failed' },
    });
  });
  afterAll(() => app?.close());

  it('sends the browser back to the SaaS backend with the userId', async () => {
    const { response } = await connectUser(app, 'redirect-user@example', 'bob');
    expect(response.status).toBe(302);
    expect(response.headers.get('location')).toBe('https://saas.example/connected?from=atlassian&userId=redirect-user%40example');
    expect(response.headers.get('referrer-policy')).toBe('no-referrer');
  });

  it('sends the browser to the failure URL with the error code', async () => {
    const browser = new TestBrowser(app);
    const { authorizeUrl } = await startSignIn(app, browser, 'declining-user');
    const response = await browser.get(await consent(authorizeUrl, 'deny'));
    expect(response.status).toBe(302);
    expect(response.headers.get('location')).toBe('https://saas.example/failed?error=access_denied');
    expect(await connectionRows(app, 'declining-user')).toEqual([]);
  });
});
