import { afterAll, beforeAll, beforeEach, expect, it } from '@jest/globals';
import { DataSource } from 'typeorm';
import { accountIdFor } from '../../src/sandbox/sandbox.users.js';
import { callApi, errorOf, userPath } from '../utils/api.js';
import { startTestApp, type TestApp } from '../utils/app.js';
import { ManualClock } from '../utils/connections.js';
import { describePostgres } from '../utils/database.js';
import { connectUser, sandboxControl } from './connect-browser.js';

const HOUR = 3_600_000;

describePostgres('GET and DELETE /v1/users/{userId}/connection', () => {
  const clock = new ManualClock();
  let app: TestApp;
  let dataSource: DataSource;

  beforeAll(async () => {
    app = await startTestApp({ clock });
    dataSource = app.app.get(DataSource);
  });
  afterAll(() => app?.close());
  beforeEach(() => sandboxControl(app, 'reset'));

  async function connected(userId: string, login: string): Promise<void> {
    const { response } = await connectUser(app, userId, login);
    expect(response.status).toBe(200);
  }

  it('describes a connection with exactly the documented fields and no token', async () => {
    await connected('describe-me', 'alice');
    const response = await callApi(app, 'GET', userPath('describe-me', '/connection'));
    expect(response.status).toBe(200);
    const body = (await response.json()) as Record<string, unknown>;
    expect(body).toEqual({
      userId: 'describe-me',
      status: 'active',
      atlassianAccountId: accountIdFor('alice'),
      scopes: expect.arrayContaining(['read:jira-work', 'offline_access', 'read:me']),
      missingScopes: [],
      accessTokenExpiresAt: new Date(clock.now().getTime() + HOUR).toISOString(),
      lastRefreshedAt: clock.now().toISOString(),
      lastError: null,
      consentedAt: clock.now().toISOString(),
      consentExpiresAt: new Date(clock.now().getTime() + 365 * 24 * HOUR).toISOString(),
    });
    expect(JSON.stringify(body)).not.toMatch(/sbx_(at|rt)_/);
  });

  it('shows the last refresh failure as a sentence', async () => {
    await connected('failing-user', 'bob');
    await dataSource.query(
      `UPDATE connections SET status = 'refresh_failing', last_error = 'AtlassianError: Atlassian answered 503' WHERE user_id = 'failing-user'`,
    );
    const body = (await (await callApi(app, 'GET', userPath('failing-user', '/connection'))).json()) as Record<string, unknown>;
    expect(body).toMatchObject({ status: 'refresh_failing', lastError: 'Atlassian answered 503.' });
  });

  it('shows a connection that needs consent again without token expiry', async () => {
    await connected('revoked-user', 'bob');
    await dataSource.query(
      `UPDATE connections SET status = 'reauth_required', access_token_ciphertext = NULL, access_token_key_id = NULL, access_token_expires_at = NULL,
         last_error = 'AtlassianError: Atlassian answered invalid_grant: Unknown or invalid refresh token.' WHERE user_id = 'revoked-user'`,
    );
    const body = (await (await callApi(app, 'GET', userPath('revoked-user', '/connection'))).json()) as Record<string, unknown>;
    expect(body).toMatchObject({
      status: 'reauth_required',
      accessTokenExpiresAt: null,
      lastError: 'Atlassian answered invalid_grant: Unknown or invalid refresh token.',
    });
  });

  it('answers 404 connection_not_found for an unknown user and 400 for a malformed userId', async () => {
    expect(await errorOf(await callApi(app, 'GET', userPath('nobody', '/connection')))).toEqual([404, 'connection_not_found']);
    expect(await errorOf(await callApi(app, 'GET', userPath('not allowed!', '/connection')))).toEqual([400, 'invalid_request']);
    expect(await errorOf(await callApi(app, 'GET', userPath('x'.repeat(129), '/connection')))).toEqual([400, 'invalid_request']);
  });

  it('forgets the tokens, the sites and their history, and queues connection.deleted in the same transaction', async () => {
    await connected('leaving-user', 'alice');
    const [{ id }]: { id: string }[] = await dataSource.query(`SELECT id FROM connections WHERE user_id = 'leaving-user'`);
    await dataSource.query(
      `INSERT INTO accessible_resource_changes (connection_id, cloud_id, change, at) VALUES ($1, 'cloud-x', 'removed', now())`,
      [id],
    );

    const response = await callApi(app, 'DELETE', userPath('leaving-user', '/connection'));
    expect(response.status).toBe(204);
    expect(await response.text()).toBe('');

    for (const table of ['connections', 'accessible_resources', 'accessible_resource_changes']) {
      const column = table === 'connections' ? 'id' : 'connection_id';
      expect(await dataSource.query(`SELECT 1 FROM ${table} WHERE ${column} = $1`, [id])).toEqual([]);
    }
    const events: { body: string }[] = await dataSource.query(
      `SELECT body FROM webhook_outbox WHERE user_id = 'leaving-user' AND type = 'connection.deleted'`,
    );
    expect(events.map((e) => JSON.parse(e.body) as unknown)).toEqual([
      {
        id: expect.any(String),
        type: 'connection.deleted',
        userId: 'leaving-user',
        at: clock.now().toISOString(),
        atlassianAccountId: accountIdFor('alice'),
      },
    ]);
    expect(await errorOf(await callApi(app, 'GET', userPath('leaving-user', '/connection')))).toEqual([404, 'connection_not_found']);
    expect(await errorOf(await callApi(app, 'DELETE', userPath('leaving-user', '/connection')))).toEqual([404, 'connection_not_found']);
  });

  it('lets a forgotten user connect again as a new connection', async () => {
    await connected('returning-user', 'bob');
    expect((await callApi(app, 'DELETE', userPath('returning-user', '/connection'))).status).toBe(204);
    await connected('returning-user', 'alice');
    const body = (await (await callApi(app, 'GET', userPath('returning-user', '/connection'))).json()) as Record<string, unknown>;
    expect(body).toMatchObject({ status: 'active', atlassianAccountId: accountIdFor('alice') });
  });

  it('answers 400 for a malformed userId on DELETE and writes nothing', async () => {
    expect(await errorOf(await callApi(app, 'DELETE', userPath('bad/id', '/connection')))).toEqual([400, 'invalid_request']);
  });
});
