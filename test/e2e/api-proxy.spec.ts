import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { DataSource } from 'typeorm';
import { ConnectionCache } from '../../src/connection-store/connection-cache.js';
import { TokenCipher } from '../../src/crypto/token-cipher.js';
import { accountIdFor } from '../../src/sandbox/sandbox.users.js';
import { callApi, errorOf, rawApi, rawErrorOf, userPath } from '../utils/api.js';
import { startTestApp, type TestApp } from '../utils/app.js';
import { ManualClock, storeRevokedAccessToken } from '../utils/connections.js';
import { describePostgres } from '../utils/database.js';
import { connectUser, sandboxControl, sandboxStats } from './connect-browser.js';

const MAX_BODY_BYTES = 4096;

interface ApiCallRecord {
  at: string;
  method: string;
  path: string;
  status: number;
}

describePostgres('the proxy: /v1/users/{userId}/proxy/{product}/{cloudId}/{path…}', () => {
  const clock = new ManualClock();
  let app: TestApp;
  let dataSource: DataSource;
  /** cloudIds by site name, per user. */
  const sites = new Map<string, Map<string, string>>();

  beforeAll(async () => {
    app = await startTestApp({ clock, env: { PROXY_MAX_BODY_BYTES: String(MAX_BODY_BYTES) } });
    dataSource = app.app.get(DataSource);
    for (const [userId, login] of [
      ['proxy-alice', 'alice'],
      ['proxy-bob', 'bob'],
      ['proxy-dave', 'dave'],
    ]) {
      const { response } = await connectUser(app, userId, login);
      expect(response.status).toBe(200);
      const rows: { cloud_id: string; name: string }[] = await dataSource.query(
        `SELECT r.cloud_id, r.name FROM accessible_resources r JOIN connections c ON c.id = r.connection_id WHERE c.user_id = $1`,
        [userId],
      );
      sites.set(userId, new Map(rows.map((r) => [r.name, r.cloud_id])));
    }
  });
  afterAll(() => app?.close());
  /** The sandbox keeps its grants between tests (a reset would revoke them): each test reads what came after its start. */
  let callsBefore = 0;
  let refreshesBefore = 0;
  beforeEach(async () => {
    callsBefore = (await allApiCalls()).length;
    refreshesBefore = (await sandboxStats(app)).tokenCalls.refresh_token;
  });

  const site = (userId: string, name: string) => sites.get(userId)!.get(name)!;
  const proxied = (userId: string, product: string, cloudId: string, rest: string) =>
    userPath(userId, `/proxy/${product}/${cloudId}/${rest}`);

  async function allApiCalls(): Promise<ApiCallRecord[]> {
    return ((await (await fetch(`${app.baseUrl}/sandbox/_control/api-calls`)).json()) as { calls: ApiCallRecord[] }).calls;
  }

  /** The calls that reached the sandbox's API during this test. */
  async function apiCalls(): Promise<ApiCallRecord[]> {
    return (await allApiCalls()).slice(callsBefore);
  }

  it("answers Jira's status, body and rate-limit headers, as the user, in place of the API's own limit headers", async () => {
    const response = await callApi(app, 'GET', proxied('proxy-alice', 'jira', site('proxy-alice', 'alice-labs'), 'rest/api/3/myself'));
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({ accountId: accountIdFor('alice'), displayName: 'Alice Andersen' });
    expect(Object.fromEntries(response.headers)).toMatchObject({
      'content-type': 'application/json; charset=utf-8',
      'x-ratelimit-limit': '65000',
      'beta-ratelimit-policy': '"global-app-quota";q=65000;w=3600',
      'cache-control': 'no-store',
    });
    expect(response.headers.get('pragma')).toBeNull();
    expect(await apiCalls()).toEqual([
      expect.objectContaining({ method: 'GET', path: `/ex/jira/${site('proxy-alice', 'alice-labs')}/rest/api/3/myself`, status: 200 }),
    ]);
  });

  it('forwards the method, the query and the body: an issue changed, read back and found', async () => {
    const cloudId = site('proxy-alice', 'acme');
    const edit = await callApi(app, 'PUT', proxied('proxy-alice', 'jira', cloudId, 'rest/api/3/issue/PROJ-7'), {
      body: { fields: { summary: 'Through the proxy' } },
    });
    expect(edit.status).toBe(204);
    const read = await callApi(app, 'GET', proxied('proxy-alice', 'jira', cloudId, 'rest/api/2/issue/PROJ-7'));
    expect(((await read.json()) as { fields: { summary: string } }).fields.summary).toBe('Through the proxy');
    await callApi(app, 'GET', proxied('proxy-alice', 'jira', cloudId, 'rest/api/3/issue/PROJ-8'));
    const found = await callApi(
      app,
      'GET',
      proxied('proxy-alice', 'jira', cloudId, 'rest/api/3/search/jql?jql=project%20%3D%20PROJ&maxResults=1'),
    );
    expect(await found.json()).toMatchObject({ issues: [{ key: 'PROJ-7' }], isLast: false });
    const byPost = await callApi(app, 'POST', proxied('proxy-alice', 'jira', cloudId, 'rest/api/3/search/jql'), {
      body: { maxResults: 5 },
    });
    expect(((await byPost.json()) as { issues: unknown[] }).issues).toHaveLength(2);
    const page = await callApi(app, 'GET', proxied('proxy-alice', 'confluence', cloudId, 'wiki/api/v2/pages/42'));
    expect(await page.json()).toMatchObject({ id: '42', title: 'Sandbox page 42' });
  });

  it("passes Atlassian's refusals on as they came", async () => {
    const response = await callApi(app, 'GET', proxied('proxy-alice', 'jira', site('proxy-alice', 'acme'), 'rest/api/3/issue/99999'));
    expect(response.status).toBe(404);
    expect(await response.json()).toEqual({ errorMessages: ['Issue does not exist or you do not have permission to see it.'], errors: {} });
    const unknown = await callApi(app, 'GET', proxied('proxy-alice', 'jira', site('proxy-alice', 'acme'), 'rest/api/3/nothing-here'));
    expect(unknown.status).toBe(404);
  });

  describe('refuses before anything reaches Atlassian', () => {
    it.each([
      ['an unknown product', 'bitbucket', 'rest/api/3/myself', 400, 'invalid_product'],
      ['a product in capitals', 'JIRA', 'rest/api/3/myself', 400, 'invalid_product'],
      ['a .. segment', 'jira', 'rest/api/3/../../../oauth/token/accessible-resources', 400, 'invalid_path'],
      ['an encoded .. segment', 'jira', 'rest/%2e%2e/%2E%2E/x', 400, 'invalid_path'],
      ['.. encoded twice', 'jira', 'rest/%252e%252e/x', 400, 'invalid_path'],
      ['an encoded slash', 'jira', 'rest/api%2F3/myself', 400, 'invalid_path'],
      ['a backslash', 'jira', 'rest\\..\\x', 400, 'invalid_path'],
      ['an encoded backslash', 'jira', 'rest/%5C..%5Cx', 400, 'invalid_path'],
      ['an absolute URL', 'jira', 'https://evil.example/x', 400, 'invalid_path'],
      ['an @', 'jira', '@evil.example/rest/api/3/myself', 400, 'invalid_path'],
      ['a matrix ..', 'jira', 'rest/..;x/myself', 400, 'invalid_path'],
      ['malformed percent-encoding', 'jira', 'rest/%zz/myself', 400, 'invalid_path'],
      ['overlong UTF-8 for dots', 'jira', 'rest/%c0%ae%c0%ae/x', 400, 'invalid_path'],
    ])('%s', async (_, product, rest, status, code) => {
      const answer = await rawApi(app, 'GET', `/v1/users/proxy-alice/proxy/${product}/${site('proxy-alice', 'acme')}/${rest}`);
      expect(rawErrorOf(answer)).toEqual([status, code]);
      expect(await apiCalls()).toEqual([]);
    });

    it.each([
      ["another user's site", () => site('proxy-alice', 'alice-labs'), 'proxy-bob', 404, 'site_not_found'],
      ['a site nobody has', () => '00000000-0000-4000-a000-000000000000', 'proxy-bob', 404, 'site_not_found'],
      ['a cloudId that is no site id at all', () => 'not_a_site', 'proxy-bob', 404, 'site_not_found'],
      ['a user with no connection', () => site('proxy-bob', 'acme'), 'nobody', 404, 'connection_not_found'],
      ['a malformed userId', () => site('proxy-bob', 'acme'), 'no spaces', 400, 'invalid_request'],
    ])('%s', async (_, cloudId, userId, status, code) => {
      expect(await errorOf(await callApi(app, 'GET', proxied(userId, 'jira', cloudId(), 'rest/api/3/myself')))).toEqual([status, code]);
      expect(await apiCalls()).toEqual([]);
    });

    it('no API key', async () => {
      const response = await callApi(app, 'GET', proxied('proxy-bob', 'jira', site('proxy-bob', 'acme'), 'rest/api/3/myself'), {
        key: null,
      });
      expect(await errorOf(response)).toEqual([401, 'unauthorized']);
    });

    it('a body over PROXY_MAX_BODY_BYTES, declared or sent in chunks, in the API error shape', async () => {
      const path = `/v1/users/proxy-bob/proxy/jira/${site('proxy-bob', 'acme')}/rest/api/3/issue/BIG-1`;
      const body = JSON.stringify({ fields: { summary: 'x'.repeat(MAX_BODY_BYTES) } });
      const declared = await rawApi(app, 'PUT', path, { headers: { 'Content-Type': 'application/json' }, body });
      expect(rawErrorOf(declared)).toEqual([413, 'body_too_large']);
      const chunked = await rawApi(app, 'PUT', path, {
        headers: { 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked' },
        body,
      });
      expect(rawErrorOf(chunked)).toEqual([413, 'body_too_large']);
      const fits = await rawApi(app, 'PUT', path, {
        headers: { 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked' },
        body: JSON.stringify({ fields: { summary: 'x'.repeat(MAX_BODY_BYTES - 100) } }),
      });
      expect(fits.status).toBe(204);
      expect((await apiCalls()).map((call) => call.method)).toEqual(['PUT']);
    });
  });

  it('retries once with a freshly refreshed token when Atlassian refuses one that has not expired yet', async () => {
    const [{ id }]: { id: string }[] = await dataSource.query(`SELECT id FROM connections WHERE user_id = 'proxy-bob'`);
    await storeRevokedAccessToken(dataSource, app.app.get(TokenCipher), id);
    // Written by hand: the replica's cache forgets the token it remembered once the trigger's notification arrives.
    await app.app.get(ConnectionCache).caughtUp();
    const response = await callApi(app, 'GET', proxied('proxy-bob', 'jira', site('proxy-bob', 'acme'), 'rest/api/3/myself'));
    expect(response.status).toBe(200);
    expect((await sandboxStats(app)).tokenCalls.refresh_token - refreshesBefore).toBe(1);
    expect((await apiCalls()).map((call) => call.status)).toEqual([401, 200]);
  });

  it('answers 409 reauth_required once the grant is revoked, and before any call after that', async () => {
    await sandboxControl(app, `grants/${encodeURIComponent(accountIdFor('dave'))}/revoke`);
    const path = proxied('proxy-dave', 'jira', site('proxy-dave', 'dave-1'), 'rest/api/3/myself');
    expect(await errorOf(await callApi(app, 'GET', path))).toEqual([409, 'reauth_required']);
    const calls = (await apiCalls()).length;
    expect(await errorOf(await callApi(app, 'GET', path))).toEqual([409, 'reauth_required']);
    expect(await apiCalls()).toHaveLength(calls);
  });

  describe('under Atlassian rate limits', () => {
    async function limitNext(reason: string | undefined, retryAfterSeconds: number): Promise<void> {
      await sandboxControl(app, 'faults', {
        count: 1,
        endpoint: 'api',
        status: 429,
        retryAfterSeconds,
        ...(reason ? { rateLimitReason: reason } : {}),
      });
    }

    async function metric(line: RegExp): Promise<number> {
      const text = await (await fetch(`${app.baseUrl}/metrics`)).text();
      const found = text.split('\n').find((l) => line.test(l));
      return found === undefined ? 0 : Number(found.slice(found.lastIndexOf(' ') + 1));
    }

    it("answers Atlassian's app-wide 429 as it came, then holds every Jira call back, on any site, until Retry-After has passed", async () => {
      const aliceSite = site('proxy-alice', 'umbrella');
      await limitNext('jira-quota-global-based', 60);
      const limited = await callApi(app, 'GET', proxied('proxy-alice', 'jira', aliceSite, 'rest/api/3/myself'));
      expect([limited.status, limited.headers.get('retry-after'), limited.headers.get('ratelimit-reason')]).toEqual([
        429,
        '60',
        'jira-quota-global-based',
      ]);
      expect(await limited.json()).toEqual({ code: 429, message: 'Rate limit exceeded' });

      clock.advance(20_500);
      for (const path of [
        proxied('proxy-bob', 'jira', site('proxy-bob', 'acme'), 'rest/api/3/myself'),
        proxied('proxy-alice', 'jira', site('proxy-alice', 'acme'), 'rest/api/3/issue/A-1'),
        userPath('proxy-bob', `/sites/${site('proxy-bob', 'acme')}/myself`),
      ]) {
        const held = await callApi(app, 'GET', path);
        expect([held.status, held.headers.get('retry-after'), held.headers.get('ratelimit-reason')]).toEqual([
          429,
          '40',
          'jira-quota-global-based',
        ]);
        expect(await errorOf(held)).toEqual([429, 'atlassian_rate_limited']);
      }
      const confluence = await callApi(
        app,
        'GET',
        proxied('proxy-alice', 'confluence', site('proxy-alice', 'acme'), 'wiki/api/v2/pages/1'),
      );
      expect(confluence.status).toBe(200);
      expect((await apiCalls()).map((call) => `${call.path.split('/')[2]} ${call.status}`)).toEqual(['jira 429', 'confluence 200']);
      expect(await metric(/^atlassian_rate_limited_total\{reason="jira-quota-global-based"\}/)).toBe(1);
      expect(await metric(/^atlassian_rate_limit_refused_total\{reason="jira-quota-global-based"\}/)).toBe(3);
      expect(await metric(/^atlassian_rate_limit_paused_scopes /)).toBe(1);
      expect(await metric(/^atlassian_api_calls_total\{product="jira",outcome="429"\}/)).toBe(1);

      clock.advance(39_500);
      expect((await callApi(app, 'GET', proxied('proxy-bob', 'jira', site('proxy-bob', 'acme'), 'rest/api/3/myself'))).status).toBe(200);
      expect(await metric(/^atlassian_rate_limit_paused_scopes /)).toBe(0);
    });

    it.each(['jira-quota-tenant-based', 'jira-burst-based', undefined])('holds back only the site after a 429 for %s', async (reason) => {
      const [paused, other] = [site('proxy-alice', 'alice-labs'), site('proxy-alice', 'acme')];
      await limitNext(reason, 5);
      expect((await callApi(app, 'GET', proxied('proxy-alice', 'jira', paused, 'rest/api/3/myself'))).status).toBe(429);
      const held = await callApi(app, 'GET', proxied('proxy-alice', 'jira', paused, 'rest/api/3/search/jql'));
      expect([held.status, held.headers.get('retry-after'), held.headers.get('ratelimit-reason')]).toEqual([429, '5', reason ?? null]);
      expect((await callApi(app, 'GET', proxied('proxy-alice', 'jira', other, 'rest/api/3/myself'))).status).toBe(200);
      clock.advance(5_000);
      expect((await callApi(app, 'GET', proxied('proxy-alice', 'jira', paused, 'rest/api/3/myself'))).status).toBe(200);
    });

    it('holds back only the writes to the issue after a per-issue write limit', async () => {
      const cloudId = site('proxy-alice', 'acme');
      const write = (key: string) =>
        callApi(app, 'PUT', proxied('proxy-alice', 'jira', cloudId, `rest/api/3/issue/${key}`), { body: { fields: {} } });
      await limitNext('jira-per-issue-on-write', 3);
      expect((await write('HOT-1')).status).toBe(429);
      const held = await write('hot-1');
      expect([held.status, held.headers.get('ratelimit-reason')]).toEqual([429, 'jira-per-issue-on-write']);
      expect((await callApi(app, 'GET', proxied('proxy-alice', 'jira', cloudId, 'rest/api/3/issue/HOT-1'))).status).toBe(200);
      expect((await write('HOT-2')).status).toBe(204);
      expect((await apiCalls()).map((call) => `${call.method} ${call.path.slice(call.path.lastIndexOf('/') + 1)} ${call.status}`)).toEqual([
        'PUT HOT-1 429',
        'GET HOT-1 200',
        'PUT HOT-2 204',
      ]);
      clock.advance(3_000);
      expect((await write('HOT-1')).status).toBe(204);
    });
  });
});
