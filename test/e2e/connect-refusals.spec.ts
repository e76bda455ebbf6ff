import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { hashSecret } from '../../src/oauth/secrets.js';
import { freePort, startTestApp, TEST_API_KEY, type TestApp } from '../utils/app.js';
import { ManualClock } from '../utils/connections.js';
import {
  connectionRows,
  connectLink,
  connectUser,
  consent,
  dataSourceOf,
  sandboxControl,
  sandboxStats,
  startSignIn,
  stateOutcome,
  TestBrowser,
} from './connect-browser.js';

const MINUTE = 60_000;

async function page(response: Response): Promise<string> {
  expect(response.headers.get('content-type')).toMatch(/^text\/html/);
  expect(response.headers.get('cache-control')).toBe('no-store');
  return response.text();
}

async function allConnections(app: TestApp): Promise<number> {
  const rows: { n: string }[] = await dataSourceOf(app).query(`SELECT count(*)::text AS n FROM connections`);
  return Number(rows[0].n);
}

describe('refusals of the connect flow', () => {
  const clock = new ManualClock();
  let app: TestApp;

  beforeAll(async () => {
    app = await startTestApp({ clock });
  });
  afterAll(() => app?.close());
  beforeEach(() => sandboxControl(app, 'reset'));

  describe('POST /v1/users/{userId}/connect', () => {
    it('needs the API key', async () => {
      const response = await fetch(`${app.baseUrl}/v1/users/u1/connect`, { method: 'POST' });
      expect(response.status).toBe(401);
      expect(await response.json()).toEqual({ error: { code: 'unauthorized', message: expect.any(String) } });
    });

    it.each([['bad%24id'], ['a%20b'], [`${'x'.repeat(129)}`], ['%C3%A9t%C3%A9']])('refuses the userId %s with 400 JSON', async (userId) => {
      const response = await fetch(`${app.baseUrl}/v1/users/${userId}/connect`, {
        method: 'POST',
        headers: { Authorization: `Bearer ${TEST_API_KEY}` },
      });
      expect(response.status).toBe(400);
      expect(await response.json()).toEqual({ error: { code: 'invalid_request', message: expect.stringContaining('userId') } });
      const tickets: unknown[] = await dataSourceOf(app).query(`SELECT 1 FROM connect_tickets WHERE user_id = $1`, [
        decodeURIComponent(userId),
      ]);
      expect(tickets).toEqual([]);
    });

    it('answers an unknown API route in the API’s error shape', async () => {
      const response = await fetch(`${app.baseUrl}/v1/users/u1/nothing-here`, { headers: { Authorization: `Bearer ${TEST_API_KEY}` } });
      expect(response.status).toBe(404);
      expect(await response.json()).toEqual({ error: { code: 'not_found', message: expect.any(String) } });
    });

    it('accepts every character the contract allows', async () => {
      const link = await connectLink(app, 'Tenant-1:user.name_2@example');
      expect(link.url).toContain('/auth/atlassian/start?ticket=');
    });
  });

  describe('GET /auth/atlassian/start', () => {
    it.each([
      ['no ticket', '', 400, 'This connect link is not valid'],
      ['an unknown ticket', '?ticket=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA', 400, 'This connect link is not valid'],
      ['a repeated ticket', '?ticket=a&ticket=b', 400, 'appeared several times'],
      ['a bracketed ticket', '?ticket[x]=a', 400, 'appeared several times'],
      ['an oversized ticket', `?ticket=${'t'.repeat(300)}`, 400, 'at most 256 are accepted'],
    ])('refuses %s with a page', async (_name, query, status, text) => {
      const response = await fetch(`${app.baseUrl}/auth/atlassian/start${query}`, { redirect: 'manual' });
      expect(response.status).toBe(status);
      expect(await page(response)).toContain(text);
      expect(response.headers.getSetCookie()).toEqual([]);
    });

    it('refuses a ticket used twice', async () => {
      const link = await connectLink(app, 'twice-user');
      expect((await fetch(link.url, { redirect: 'manual' })).status).toBe(302);
      const again = await fetch(link.url, { redirect: 'manual' });
      expect(again.status).toBe(400);
      expect(await page(again)).toContain('This connect link was already used');
    });

    it('lets a link checker probe with HEAD without spending the ticket', async () => {
      const link = await connectLink(app, 'probed-user');
      const probe = await fetch(link.url, { method: 'HEAD', redirect: 'manual' });
      expect(probe.status).toBe(200);
      expect(probe.headers.getSetCookie()).toEqual([]);
      expect((await fetch(link.url, { redirect: 'manual' })).status).toBe(302);
    });

    it('refuses an expired ticket', async () => {
      const link = await connectLink(app, 'late-user');
      clock.advance(10 * MINUTE + 1);
      const response = await fetch(link.url, { redirect: 'manual' });
      expect(response.status).toBe(400);
      expect(await page(response)).toContain('This connect link has expired');
    });
  });

  describe('GET /auth/atlassian/callback', () => {
    it('refuses a visit without an answer from Atlassian', async () => {
      const response = await fetch(`${app.baseUrl}/auth/atlassian/callback`);
      expect(response.status).toBe(400);
      expect(await page(response)).toContain('This page expects an answer from Atlassian');
    });

    it.each([
      ['a repeated state', (code: string, state: string) => `code=${code}&state=${state}&state=${state}`],
      ['a repeated code', (code: string, state: string) => `code=${code}&code=${code}&state=${state}`],
      ['an array code', (code: string, state: string) => `code[]=${code}&state=${state}`],
    ])('refuses %s without spending the state, then lets the right callback through', async (_name, query) => {
      const browser = new TestBrowser(app);
      const { authorizeUrl } = await startSignIn(app, browser, 'dup-user');
      const callbackUrl = await consent(authorizeUrl, { user: 'bob' });
      const code = callbackUrl.searchParams.get('code')!;
      const state = callbackUrl.searchParams.get('state')!;
      const refused = await browser.get(`${app.baseUrl}/auth/atlassian/callback?${query(code, state)}`);
      expect(refused.status).toBe(400);
      expect(await page(refused)).toContain('This sign-in address is malformed');
      expect((await sandboxStats(app)).tokenCalls.authorization_code).toBe(0);
      expect((await browser.get(callbackUrl)).status).toBe(200);
    });

    it('lets a link checker probe the callback with HEAD without spending the state or the code', async () => {
      const browser = new TestBrowser(app);
      const { authorizeUrl } = await startSignIn(app, browser, 'probed-callback-user');
      const callbackUrl = await consent(authorizeUrl, { user: 'bob' });
      expect((await fetch(callbackUrl, { method: 'HEAD', redirect: 'manual' })).status).toBe(200);
      expect((await sandboxStats(app)).tokenCalls.authorization_code).toBe(0);
      expect((await browser.get(callbackUrl)).status).toBe(200);
    });

    it('refuses a state it never issued', async () => {
      const browser = new TestBrowser(app);
      await startSignIn(app, browser, 'unknown-state-user');
      const response = await browser.get(`${app.baseUrl}/auth/atlassian/callback?code=abc&state=${'S'.repeat(43)}`);
      expect(response.status).toBe(400);
      expect(await page(response)).toContain('This sign-in link is not recognised');
      expect((await sandboxStats(app)).tokenCalls.authorization_code).toBe(0);
    });

    it('answers a reload of the success page with its result, without a second exchange, and leaves the connection as it was', async () => {
      const { response, callbackUrl, browser } = await connectUser(app, 'replay-user', 'bob');
      expect(response.status).toBe(200);
      const [before] = await connectionRows(app, 'replay-user');
      const reload = await browser.get(callbackUrl);
      expect(reload.status).toBe(200);
      expect(await page(reload)).toContain('This sign-in has already finished; opening its address again changes nothing.');
      const replay = await new TestBrowser(app).get(callbackUrl);
      expect(replay.status).toBe(409);
      expect(await page(replay)).toContain('This sign-in link was already used');
      expect((await sandboxStats(app)).tokenCalls.authorization_code).toBe(1);
      expect(await connectionRows(app, 'replay-user')).toEqual([before]);
    });

    it('answers a reload of a refusal page with the same refusal', async () => {
      const browser = new TestBrowser(app);
      const { authorizeUrl } = await startSignIn(app, browser, 'reloading-decliner');
      const callbackUrl = await consent(authorizeUrl, 'deny');
      expect((await browser.get(callbackUrl)).status).toBe(403);
      const reload = await browser.get(callbackUrl);
      expect(reload.status).toBe(403);
      const html = await page(reload);
      expect(html).toContain('You declined access');
      expect(html).toContain('This sign-in has already ended this way; opening its address again does not try again.');
    });

    it('refuses a callback more than 10 minutes after the start, without an exchange', async () => {
      const browser = new TestBrowser(app);
      const { authorizeUrl } = await startSignIn(app, browser, 'slow-user');
      const callbackUrl = await consent(authorizeUrl, { user: 'bob' });
      clock.advance(10 * MINUTE + 1);
      const response = await browser.get(callbackUrl);
      expect(response.status).toBe(400);
      expect(await page(response)).toContain('This sign-in took too long');
      expect((await sandboxStats(app)).tokenCalls.authorization_code).toBe(0);
      expect(await connectionRows(app, 'slow-user')).toEqual([]);
    });

    it('refuses a callback from another browser, or another user’s browser, and lets the right one finish', async () => {
      const alicesBrowser = new TestBrowser(app);
      const { authorizeUrl } = await startSignIn(app, alicesBrowser, 'browser-a-user');
      const callbackUrl = await consent(authorizeUrl, { user: 'alice' });

      const noCookie = await fetch(callbackUrl, { redirect: 'manual' });
      expect(noCookie.status).toBe(400);
      expect(await page(noCookie)).toContain('did not send the cookie');

      const bobsBrowser = new TestBrowser(app);
      await startSignIn(app, bobsBrowser, 'browser-b-user');
      const otherUser = await bobsBrowser.get(callbackUrl);
      expect(otherUser.status).toBe(400);
      expect(await page(otherUser)).toContain('This sign-in was started in another browser');

      expect((await sandboxStats(app)).tokenCalls.authorization_code).toBe(0);
      expect(await connectionRows(app, 'browser-b-user')).toEqual([]);
      expect((await alicesBrowser.get(callbackUrl)).status).toBe(200);
      expect(await connectionRows(app, 'browser-a-user')).toHaveLength(1);
    });

    it('says the user declined when they press Cancel, and records it', async () => {
      const browser = new TestBrowser(app);
      const { authorizeUrl, state } = await startSignIn(app, browser, 'declining-user');
      const response = await browser.get(await consent(authorizeUrl, 'deny'));
      expect(response.status).toBe(403);
      const html = await page(response);
      expect(html).toContain('You declined access');
      expect(html).toContain('User did not authorize the request');
      expect(await stateOutcome(app, hashSecret(state))).toBe('access_denied');
      expect(await connectionRows(app, 'declining-user')).toEqual([]);
    });

    it('refuses an empty code, after spending the state', async () => {
      const browser = new TestBrowser(app);
      const { state } = await startSignIn(app, browser, 'empty-code-user');
      const response = await browser.get(`${app.baseUrl}/auth/atlassian/callback?code=&state=${state}`);
      expect(response.status).toBe(400);
      expect(await page(response)).toContain('Atlassian sent no sign-in code');
      expect(await stateOutcome(app, hashSecret(state))).toBe('code_missing');
    });

    it('refuses a code over 4 KB and says so', async () => {
      const browser = new TestBrowser(app);
      const { state } = await startSignIn(app, browser, 'long-code-user');
      const response = await browser.get(`${app.baseUrl}/auth/atlassian/callback?code=${'c'.repeat(5000)}&state=${state}`);
      expect(response.status).toBe(400);
      expect(await page(response)).toContain('The code parameter is 5000 characters long; at most 4096 are accepted.');
      expect((await sandboxStats(app)).tokenCalls.authorization_code).toBe(0);
    });

    it('answers a 100 KB code with a plain explanation, not a 500 or a dropped connection', async () => {
      const browser = new TestBrowser(app);
      const { state } = await startSignIn(app, browser, 'huge-code-user');
      const response = await browser.get(`${app.baseUrl}/auth/atlassian/callback?code=${'c'.repeat(100_000)}&state=${state}`);
      expect(response.status).toBe(431);
      expect(await response.text()).toContain('sign-in codes are accepted up to 4096 characters');
      expect(await connectionRows(app, 'huge-code-user')).toEqual([]);
    });

    it('explains a code already used by someone else, and stores nothing', async () => {
      const browser = new TestBrowser(app);
      const { authorizeUrl, state } = await startSignIn(app, browser, 'stolen-code-user');
      const callbackUrl = await consent(authorizeUrl, { user: 'bob' });
      const prefetch = await fetch(`${app.baseUrl}/sandbox/oauth/token`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({
          grant_type: 'authorization_code',
          client_id: app.config.atlassian.clientId,
          client_secret: app.config.atlassian.clientSecret,
          code: callbackUrl.searchParams.get('code'),
          redirect_uri: app.config.atlassian.callbackUrl,
        }),
      });
      expect(prefetch.status).toBe(200);

      const response = await browser.get(callbackUrl);
      expect(response.status).toBe(400);
      const html = await page(response);
      expect(html).toContain(
        '<h1>Atlassian did not accept the sign-in</h1>\n<p>Atlassian refused the sign-in code (invalid_grant: Invalid authorization code).</p>',
      );
      expect(html).toContain('Likely causes');
      expect(html).toContain(
        `It must equal the Callback URL registered for the app in the Atlassian developer console byte for byte, trailing slash included.`,
      );
      expect(html).toContain(app.config.atlassian.callbackUrl);
      expect(html).toContain('Unlikely or ruled out');
      expect(html).toContain('Code expired (ruled out)');
      expect(html).toContain('Code already used (unlikely)');
      expect(html).not.toContain(callbackUrl.searchParams.get('code')!);
      expect(await stateOutcome(app, hashSecret(state))).toBe('invalid_grant');
      expect(await connectionRows(app, 'stolen-code-user')).toEqual([]);
    });

    it('says a code arriving with %-escapes was likely double-encoded', async () => {
      const browser = new TestBrowser(app);
      const { authorizeUrl } = await startSignIn(app, browser, 'encoded-code-user');
      const callbackUrl = await consent(authorizeUrl, { user: 'bob' });
      const code = callbackUrl.searchParams.get('code')!;
      const doubleEncoded = encodeURIComponent(code.replace(/_/g, '%5F'));
      const response = await browser.get(
        `${app.baseUrl}/auth/atlassian/callback?code=${doubleEncoded}&state=${callbackUrl.searchParams.get('state')}`,
      );
      expect(response.status).toBe(400);
      const html = await page(response);
      const likely = html.slice(html.indexOf('Likely causes'), html.indexOf('Unlikely or ruled out'));
      expect(likely).toContain('Code altered on its way (likely)');
      expect(likely).toContain('URL-encoded the callback address twice');
    });

    it('says a code that waited too long at Atlassian expired', async () => {
      await sandboxControl(app, 'settings', { codeTtlSeconds: 60 });
      const browser = new TestBrowser(app);
      const { authorizeUrl } = await startSignIn(app, browser, 'old-code-user');
      const callbackUrl = await consent(authorizeUrl, { user: 'bob' });
      clock.advance(2 * MINUTE);
      const response = await browser.get(callbackUrl);
      expect(response.status).toBe(400);
      const html = await page(response);
      expect(html).toContain('invalid_request: authorization_code is invalid');
      expect(html.slice(html.indexOf('Likely causes'))).toMatch(
        /^Likely causes<\/h2><ul><li><span class="verdict">Code expired \(likely\)/,
      );
    });

    it('refuses a token answer without a refresh token, storing nothing', async () => {
      await sandboxControl(app, 'settings', { omitRefreshToken: true });
      const { response } = await connectUser(app, 'offline-user', 'bob');
      expect(response.status).toBe(502);
      expect(await page(response)).toContain('Atlassian did not grant offline access');
      expect(await connectionRows(app, 'offline-user')).toEqual([]);
    });

    it('says Atlassian is unavailable when its token endpoint answers 503, and keeps the existing connection', async () => {
      await connectUser(app, 'outage-user', 'alice');
      const [before] = await connectionRows(app, 'outage-user');
      const connectionsBefore = await allConnections(app);
      await sandboxControl(app, 'faults', { count: 1, endpoint: 'token', status: 503 });
      const { response } = await connectUser(app, 'outage-user', 'bob');
      expect(response.status).toBe(503);
      const html = await page(response);
      expect(html).toContain('Atlassian could not be reached');
      expect(html).toContain('Exchanging the sign-in code: Atlassian answered 503.');
      expect(await connectionRows(app, 'outage-user')).toEqual([before]);
      expect(await allConnections(app)).toBe(connectionsBefore);
    });

    it('says Atlassian is unavailable when /me fails after the exchange, storing nothing', async () => {
      await sandboxControl(app, 'faults', { count: 1, endpoint: 'api', status: 502 });
      const { response } = await connectUser(app, 'me-outage-user', 'bob');
      expect(response.status).toBe(503);
      expect(await page(response)).toContain('Reading your Atlassian account: Atlassian answered 502.');
      expect(await connectionRows(app, 'me-outage-user')).toEqual([]);
    });
  });
});

/** A stand-in for auth.atlassian.com that answers the token request with an HTML page, as a proxy or outage page would. */
async function htmlServer(status: number): Promise<{ url: string; server: Server }> {
  const server = createServer((_req, res) => {
    res.writeHead(status, { 'Content-Type': 'text/html' }).end('<html><body><h1>Service temporarily unavailable</h1></body></html>');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

describe('callbacks when Atlassian cannot be talked to', () => {
  let app: TestApp | undefined;
  let server: Server | undefined;

  afterEach(async () => {
    await app?.close();
    server?.closeAllConnections();
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    app = undefined;
    server = undefined;
  });

  /** Start at the service, then come back with a code the way Atlassian would (the stand-in has no consent page). */
  async function callbackWithCode(target: TestApp): Promise<Response> {
    const browser = new TestBrowser(target);
    const { state } = await startSignIn(target, browser, 'unreachable-user');
    return browser.get(`${target.baseUrl}/auth/atlassian/callback?code=some-code&state=${state}`);
  }

  it.each([
    [200, 502, 'Atlassian answered something unexpected'],
    [502, 503, 'Atlassian could not be reached'],
  ])('ends an HTML answer with status %i as a %i page', async (upstreamStatus, status, title) => {
    const html = await htmlServer(upstreamStatus);
    server = html.server;
    app = await startTestApp({ env: { ATLASSIAN_AUTH_URL: html.url } });
    const response = await callbackWithCode(app);
    expect(response.status).toBe(status);
    expect(await page(response)).toContain(title);
    expect(await connectionRows(app, 'unreachable-user')).toEqual([]);
  });

  it('ends an unreachable Atlassian as a 503 page', async () => {
    app = await startTestApp({ env: { ATLASSIAN_AUTH_URL: `http://127.0.0.1:${await freePort()}` } });
    const response = await callbackWithCode(app);
    expect(response.status).toBe(503);
    const html = await page(response);
    expect(html).toContain('Atlassian could not be reached');
    expect(html).toContain('ECONNREFUSED');
    expect(await connectionRows(app, 'unreachable-user')).toEqual([]);
  });
});
