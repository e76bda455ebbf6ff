import { afterAll, beforeAll, beforeEach, expect, it } from '@jest/globals';
import { DataSource } from 'typeorm';
import { TokenCipher } from '../../src/crypto/token-cipher.js';
import { accountIdFor } from '../../src/sandbox/sandbox.users.js';
import { callApi, errorOf, userPath } from '../utils/api.js';
import { startTestApp, type TestApp } from '../utils/app.js';
import { ManualClock, readConnection, storeRevokedAccessToken } from '../utils/connections.js';
import { describePostgres } from '../utils/database.js';
import { connectUser, sandboxControl, sandboxStats } from './connect-browser.js';

describePostgres('GET /v1/users/{userId}/sites/{cloudId}/myself', () => {
  const clock = new ManualClock();
  let app: TestApp;
  let dataSource: DataSource;
  let cipher: TokenCipher;

  beforeAll(async () => {
    app = await startTestApp({ clock });
    dataSource = app.app.get(DataSource);
    cipher = app.app.get(TokenCipher);
  });
  afterAll(() => app?.close());
  beforeEach(() => sandboxControl(app, 'reset'));

  /** Connects the user and answers their connection id and the cloudId of each of their sites by name. */
  async function connected(userId: string, login: string): Promise<{ id: string; sites: Map<string, string> }> {
    const { response } = await connectUser(app, userId, login);
    expect(response.status).toBe(200);
    const rows: { id: string; cloud_id: string; name: string }[] = await dataSource.query(
      `SELECT c.id, r.cloud_id, r.name FROM connections c LEFT JOIN accessible_resources r ON r.connection_id = c.id WHERE c.user_id = $1`,
      [userId],
    );
    return { id: rows[0].id, sites: new Map(rows.filter((r) => r.cloud_id).map((r) => [r.name, r.cloud_id])) };
  }

  function myself(userId: string, cloudId: string): Promise<Response> {
    return callApi(app, 'GET', userPath(userId, `/sites/${encodeURIComponent(cloudId)}/myself`));
  }

  it("passes Jira's answer through, called with the user's token on the gateway path", async () => {
    const { sites } = await connected('jira-user', 'alice');
    const response = await myself('jira-user', sites.get('alice-labs')!);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^application\/json/);
    expect(await response.json()).toEqual({
      self: `https://alice-labs.atlassian.net/rest/api/3/user?accountId=${encodeURIComponent(accountIdFor('alice'))}`,
      accountId: accountIdFor('alice'),
      accountType: 'atlassian',
      emailAddress: 'alice@sandbox.example',
      displayName: 'Alice Andersen',
      active: true,
      timeZone: 'Europe/Berlin',
      locale: 'en_US',
    });
  });

  it('retries once with a freshly refreshed token when Atlassian refuses one that has not expired yet', async () => {
    const { id, sites } = await connected('revoked-token', 'bob');
    // Atlassian revokes an access token when the reuse leeway after its rotation ends, before its exp.
    await storeRevokedAccessToken(dataSource, cipher, id);

    const response = await myself('revoked-token', sites.get('acme')!);
    expect(response.status).toBe(200);
    expect(((await response.json()) as { accountId: string }).accountId).toBe(accountIdFor('bob'));
    expect((await sandboxStats(app)).tokenCalls.refresh_token).toBe(1);
    const stored = await readConnection(dataSource, cipher, id);
    expect(stored.accessToken).toMatch(/^sbx_at_/);
    expect(stored.accessToken).not.toBe('sbx_at_revoked-before-its-expiry');
    expect(stored.status).toBe('active');
  });

  it('answers 409 reauth_required when the retry finds the grant revoked, and marks the connection once', async () => {
    const { sites } = await connected('revoked-grant', 'carl');
    await sandboxControl(app, `grants/${encodeURIComponent(accountIdFor('carl'))}/revoke`);
    expect(await errorOf(await myself('revoked-grant', sites.get('carl-1')!))).toEqual([409, 'reauth_required']);
    expect((await sandboxStats(app)).tokenCalls.refresh_token).toBe(1);
    const events: { type: string }[] = await dataSource.query(
      `SELECT type FROM webhook_outbox WHERE user_id = 'revoked-grant' ORDER BY created_at`,
    );
    expect(events.map((e) => e.type)).toEqual(['connection.created', 'connection.reauth_required']);
    expect(await errorOf(await myself('revoked-grant', sites.get('carl-1')!))).toEqual([409, 'reauth_required']);
  });

  it('answers 503 with Retry-After at once when Atlassian rate limits the call', async () => {
    const { sites } = await connected('limited', 'bob');
    await sandboxControl(app, 'faults', { count: 1, endpoint: 'api', status: 429, retryAfterSeconds: 30 });
    const response = await myself('limited', sites.get('acme')!);
    expect(response.headers.get('retry-after')).toBe('30');
    expect(await errorOf(response)).toEqual([503, 'atlassian_unavailable']);
  });

  it("answers 404 site_not_found for a site that is not one of the user's", async () => {
    const alice = await connected('site-owner', 'alice');
    await connected('other-user', 'bob');
    expect(await errorOf(await myself('other-user', alice.sites.get('alice-labs')!))).toEqual([404, 'site_not_found']);
    expect(await errorOf(await myself('other-user', '00000000-0000-4000-a000-000000000000'))).toEqual([404, 'site_not_found']);
    expect((await sandboxStats(app)).tokenCalls.refresh_token).toBe(0);
  });

  it('answers 404 site_not_found when Atlassian no longer knows a stored site', async () => {
    const { id } = await connected('stale-site', 'bob');
    await dataSource.query(
      `INSERT INTO accessible_resources (connection_id, cloud_id, url, name, scopes, first_seen_at)
       VALUES ($1, '11111111-1111-4111-a111-111111111111', 'https://gone.atlassian.net', 'gone', '{read:jira-work}', now())`,
      [id],
    );
    expect(await errorOf(await myself('stale-site', '11111111-1111-4111-a111-111111111111'))).toEqual([404, 'site_not_found']);
  });

  it.each([
    ['an unknown user', 'nobody', '00000000-0000-4000-a000-000000000000', 404, 'connection_not_found'],
    ['a malformed userId', 'no spaces', '00000000-0000-4000-a000-000000000000', 400, 'invalid_request'],
    ['a malformed cloudId', 'jira-user', 'not_a_site', 400, 'invalid_request'],
    ['a cloudId that is too long', 'jira-user', 'a'.repeat(65), 400, 'invalid_request'],
  ])('answers %s with an error', async (_, userId, cloudId, status, code) => {
    expect(await errorOf(await myself(userId, cloudId))).toEqual([status, code]);
  });
});
