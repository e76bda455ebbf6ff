import { afterAll, beforeAll, beforeEach, expect, it } from '@jest/globals';
import { DataSource } from 'typeorm';
import { accountIdFor } from '../../src/sandbox/sandbox.users.js';
import { callApi, errorOf, userPath } from '../utils/api.js';
import { startTestApp, type TestApp } from '../utils/app.js';
import { ManualClock } from '../utils/connections.js';
import { describePostgres } from '../utils/database.js';
import { connectUser, sandboxControl, sandboxStats } from './connect-browser.js';

const HOUR = 3_600_000;

interface ResourcesBody {
  userId: string;
  resources: { id: string; url: string; name: string; scopes: string[]; avatarUrl: string | null }[];
  fetchedAt: string | null;
  changes?: { added: string[]; removed: string[] };
}

describePostgres('GET /v1/users/{userId}/accessible-resources', () => {
  const clock = new ManualClock();
  let app: TestApp;
  let dataSource: DataSource;

  beforeAll(async () => {
    app = await startTestApp({ clock, captureLogs: true });
    dataSource = app.app.get(DataSource);
  });
  afterAll(() => app?.close());
  beforeEach(() => sandboxControl(app, 'reset'));

  async function connected(userId: string, login: string): Promise<void> {
    const { response } = await connectUser(app, userId, login);
    expect(response.status).toBe(200);
  }

  async function resources(userId: string, query = ''): Promise<Response> {
    return callApi(app, 'GET', userPath(userId, `/accessible-resources${query}`));
  }

  /** The sandbox re-creates an ad-hoc user with this many sites (`<login>-1` … `<login>-n`); same account, same grant. */
  async function giveSites(login: string, sites: number): Promise<Map<string, string>> {
    const response = await fetch(`${app.baseUrl}/sandbox/_control/users`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ user: login, sites }),
    });
    expect(response.status).toBe(201);
    const user = (await response.json()) as { sites: { id: string; name: string }[] };
    return new Map(user.sites.map((s) => [s.name, s.id]));
  }

  async function changeHistory(userId: string): Promise<{ cloud_id: string; change: string; at: Date }[]> {
    return dataSource.query(
      `SELECT h.cloud_id, h.change, h.at FROM accessible_resource_changes h JOIN connections c ON c.id = h.connection_id
       WHERE c.user_id = $1 ORDER BY h.at, h.change, h.cloud_id`,
      [userId],
    );
  }

  it('serves the sites stored at connect, merged by id, in exactly the documented shape', async () => {
    await connected('stored-sites', 'alice');
    const before = (await sandboxStats(app)).tokenCalls;
    const response = await resources('stored-sites');
    expect(response.status).toBe(200);
    const body = (await response.json()) as ResourcesBody;
    expect(Object.keys(body).sort()).toEqual(['fetchedAt', 'resources', 'userId']);
    expect(body.userId).toBe('stored-sites');
    expect(body.fetchedAt).toBe(clock.now().toISOString());
    expect(body.resources.map((r) => r.name)).toEqual(['acme', 'alice-labs', 'umbrella']);
    const acme = body.resources[0];
    expect(Object.keys(acme).sort()).toEqual(['avatarUrl', 'id', 'name', 'scopes', 'url']);
    expect(acme).toMatchObject({ url: 'https://acme.atlassian.net', avatarUrl: expect.stringMatching(/^https:\/\//) });
    // acme is listed twice by Atlassian (Jira and Confluence): one entry with both products' scopes.
    expect(acme.scopes).toEqual(expect.arrayContaining(['read:jira-work', 'read:confluence-content.all']));
    expect((await sandboxStats(app)).tokenCalls).toEqual(before);
  });

  it('answers an empty list for a user without sites', async () => {
    await connected('no-sites', 'carol');
    expect(((await (await resources('no-sites')).json()) as ResourcesBody).resources).toEqual([]);
  });

  it('re-reads the sites with refresh=true, replaces the stored set and records what came and went', async () => {
    await connected('growing-user', 'dave');
    const first = await giveSites('dave', 3);
    clock.advance(60_000);

    const grown = await resources('growing-user', '?refresh=true');
    expect(grown.status).toBe(200);
    const grownBody = (await grown.json()) as ResourcesBody;
    expect(grownBody.resources.map((r) => r.name)).toEqual(['dave-1', 'dave-2', 'dave-3']);
    expect(grownBody.fetchedAt).toBe(clock.now().toISOString());
    expect(grownBody.changes).toEqual({ added: [first.get('dave-2'), first.get('dave-3')].sort(), removed: [] });
    const addedAt = clock.now();

    await giveSites('dave', 1);
    clock.advance(60_000);
    const shrunk = (await (await resources('growing-user', '?refresh=true')).json()) as ResourcesBody;
    expect(shrunk.resources.map((r) => r.name)).toEqual(['dave-1']);
    expect(shrunk.changes).toEqual({ added: [], removed: [first.get('dave-2'), first.get('dave-3')].sort() });

    const unchanged = (await (await resources('growing-user', '?refresh=true')).json()) as ResourcesBody;
    expect(unchanged.changes).toEqual({ added: [], removed: [] });

    // The stored set is what the last read found, and a plain GET serves it without the changes.
    const stored = (await (await resources('growing-user')).json()) as ResourcesBody;
    expect(stored).toEqual({ userId: 'growing-user', resources: shrunk.resources, fetchedAt: clock.now().toISOString() });
    expect(await changeHistory('growing-user')).toEqual(
      [
        { cloud_id: first.get('dave-2'), change: 'added', at: addedAt },
        { cloud_id: first.get('dave-3'), change: 'added', at: addedAt },
        { cloud_id: first.get('dave-2'), change: 'removed', at: clock.now() },
        { cloud_id: first.get('dave-3'), change: 'removed', at: clock.now() },
      ].sort((a, b) => a.at.getTime() - b.at.getTime() || a.change.localeCompare(b.change) || a.cloud_id!.localeCompare(b.cloud_id!)),
    );
  });

  it('refreshes an expired access token before re-reading the sites', async () => {
    await connected('expired-user', 'bob');
    clock.advance(2 * HOUR);
    const response = await resources('expired-user', '?refresh=true');
    expect(response.status).toBe(200);
    expect(((await response.json()) as ResourcesBody).resources.map((r) => r.name)).toEqual(['acme']);
    expect((await sandboxStats(app)).tokenCalls.refresh_token).toBe(1);
    const [row]: { access_token_expires_at: Date }[] = await dataSource.query(
      `SELECT access_token_expires_at FROM connections WHERE user_id = 'expired-user'`,
    );
    expect(row.access_token_expires_at.getTime()).toBe(clock.now().getTime() + HOUR);
  });

  it('answers 409 reauth_required when Atlassian revoked the grant, and marks the connection', async () => {
    await connected('revoked-sites', 'erin');
    await sandboxControl(app, `grants/${encodeURIComponent(accountIdFor('erin'))}/revoke`);
    expect(await errorOf(await resources('revoked-sites', '?refresh=true'))).toEqual([409, 'reauth_required']);
    const [row]: { status: string }[] = await dataSource.query(`SELECT status FROM connections WHERE user_id = 'revoked-sites'`);
    expect(row.status).toBe('reauth_required');
    // The stored sites no longer say what the user can reach.
    expect(await errorOf(await resources('revoked-sites'))).toEqual([409, 'reauth_required']);
  });

  it('answers 503 atlassian_unavailable with Atlassian’s Retry-After when it rate limits, and keeps the stored sites', async () => {
    await connected('limited-user', 'alice');
    await sandboxControl(app, 'faults', { count: 1, endpoint: 'api', status: 429, retryAfterSeconds: 17 });
    const response = await resources('limited-user', '?refresh=true');
    expect(response.headers.get('retry-after')).toBe('17');
    expect(await errorOf(response)).toEqual([503, 'atlassian_unavailable']);
    expect(((await (await resources('limited-user')).json()) as ResourcesBody).resources).toHaveLength(3);
  });

  it('answers 503 when Atlassian fails, without retrying it', async () => {
    await connected('outage-user', 'bob');
    await sandboxControl(app, 'faults', { count: 1, endpoint: 'api', status: 502 });
    const response = await resources('outage-user', '?refresh=true');
    expect(await errorOf(response)).toEqual([503, 'atlassian_unavailable']);
    expect(Number(response.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    // An expected outage answer is a warning without a made-up stack trace, not an error.
    const requestId = response.headers.get('x-request-id');
    const line = app.logLines().find((entry) => (entry.req as { id?: string } | undefined)?.id === requestId && entry.res !== undefined);
    expect(line).toMatchObject({ level: 40, res: { statusCode: 503 } });
    expect(line?.err).toBeUndefined();
    // One fault was planned: a retry would have got through and answered 200.
    expect((await resources('outage-user', '?refresh=true')).status).toBe(200);
  });

  it('is timed in /metrics by route pattern, never by user id', async () => {
    await (await resources('metrics-probe-user')).arrayBuffer();
    await (await fetch(`${app.baseUrl}/v1/no-such-route/metrics-probe-path`)).arrayBuffer();
    const metrics = await (await fetch(`${app.baseUrl}/metrics`)).text();
    expect(metrics).toMatch(
      /http_request_duration_seconds_count\{method="GET",route="\/v1\/users\/:userId\/accessible-resources",status_code="404"\} \d+/,
    );
    // A request that matched no route is counted as such, not under a middleware's wildcard.
    expect(metrics).toMatch(/http_request_duration_seconds_count\{method="GET",route="unmatched",status_code="404"\} \d+/);
    expect(metrics).not.toContain('metrics-probe-user');
    expect(metrics).not.toContain('metrics-probe-path');
  });

  it.each([
    ['unknown user', 'nobody-at-all', '', 404, 'connection_not_found'],
    ['unknown user with refresh', 'nobody-at-all', '?refresh=true', 404, 'connection_not_found'],
    ['malformed userId', 'bad id', '', 400, 'invalid_request'],
    ['refresh that is not a boolean', 'stored-sites', '?refresh=yes', 400, 'invalid_request'],
    ['repeated refresh', 'stored-sites', '?refresh=true&refresh=false', 400, 'invalid_request'],
    ['unknown query parameter', 'stored-sites', '?expand=all', 400, 'invalid_request'],
  ])('answers %s (%s%s) with %i %s', async (_, userId, query, status, code) => {
    expect(await errorOf(await resources(userId, query))).toEqual([status, code]);
  });
});
