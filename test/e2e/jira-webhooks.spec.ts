import { afterAll, beforeAll, beforeEach, expect, it, jest } from '@jest/globals';
import { SignJWT } from 'jose';
import { DataSource } from 'typeorm';
import { JiraWebhooksRepository } from '../../src/jira-webhooks/jira-webhooks.repository.js';
import { JiraWebhooksScheduler } from '../../src/jira-webhooks/jira-webhooks.scheduler.js';
import { REFRESH_POLICY } from '../../src/refresh/refresh.policy.js';
import type { JiraWebhookStats } from '../../src/sandbox/sandbox.jira-webhooks.js';
import { accountIdFor } from '../../src/sandbox/sandbox.users.js';
import { callApi, errorOf, userPath } from '../utils/api.js';
import { startTestApp, type TestApp } from '../utils/app.js';
import { ManualClock, outboxEvents } from '../utils/connections.js';
import { describePostgres } from '../utils/database.js';
import { connectUser, sandboxControl } from './connect-browser.js';

const DAY = 86_400_000;
const SCOPES = 'read:jira-work manage:jira-webhook';
const UPDATED = { events: ['jira:issue_updated'], jqlFilter: 'project = ABC' };

interface Webhook {
  cloudId: string;
  jiraWebhookId: number | null;
  events: string[];
  jqlFilter: string;
  status: string;
  expiresAt: string | null;
  lastDeliveryAt: string | null;
  lastError: string | null;
}

describePostgres('Jira webhooks: PUT, GET and DELETE /v1/users/{userId}/jira-webhooks, the daemon and the receiver', () => {
  const clock = new ManualClock('2026-03-02T09:00:00.000Z');
  let app: TestApp;
  let dataSource: DataSource;

  beforeAll(async () => {
    app = await startTestApp({ clock, env: { ATLASSIAN_SCOPES: SCOPES, REFRESH_INTERVAL_SECONDS: '3600' } });
    dataSource = app.app.get(DataSource);
  });
  afterAll(() => app?.close());
  // The sandbox forgets its registrations (and counts ids from 1 again), so the service forgets its own.
  beforeEach(async () => {
    await sandboxControl(app, 'reset');
    await dataSource.query(`TRUNCATE jira_webhook_registrations, jira_webhook_subscriptions, jira_webhook_deliveries, webhook_outbox`);
  });

  const tick = () => app.app.get(JiraWebhooksScheduler).tick();
  const put = (userId: string, body: unknown) => callApi(app, 'PUT', userPath(userId, '/jira-webhooks'), { body });
  const remove = (userId: string) => callApi(app, 'DELETE', userPath(userId, '/jira-webhooks'));
  async function list(userId: string): Promise<Webhook[]> {
    const response = await callApi(app, 'GET', userPath(userId, '/jira-webhooks'));
    expect(response.status).toBe(200);
    const body = (await response.json()) as { userId: string; webhooks: Webhook[] };
    expect(body.userId).toBe(userId);
    return body.webhooks;
  }
  async function jira(): Promise<JiraWebhookStats> {
    return (await (await fetch(`${app.baseUrl}/sandbox/_control/jira-webhooks`)).json()) as JiraWebhookStats;
  }
  async function deliver(
    body: Record<string, unknown>,
  ): Promise<{ identifier: string | null; matchedWebhookIds: number[]; statuses: number[] }> {
    const response = await fetch(`${app.baseUrl}/sandbox/_control/jira-webhooks/deliveries`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ duplicate: false, ...body }),
    });
    expect(response.status).toBe(200);
    return (await response.json()) as { identifier: string | null; matchedWebhookIds: number[]; statuses: number[] };
  }
  async function connected(userId: string, login: string): Promise<Map<string, string>> {
    expect((await connectUser(app, userId, login)).response.status).toBe(200);
    const rows: { cloud_id: string; name: string }[] = await dataSource.query(
      `SELECT r.cloud_id, r.name FROM connections c JOIN accessible_resources r ON r.connection_id = c.id WHERE c.user_id = $1`,
      [userId],
    );
    return new Map(rows.map((r) => [r.name, r.cloud_id]));
  }
  const jiraEvents = async () => (await outboxEvents(dataSource)).filter((e) => e.type === 'jira.event');

  it("registers on every site of the user as that user, with Jira's ids and expiry, and answers like GET", async () => {
    const sites = await connected('hooks-everywhere', 'alice');
    const response = await put('hooks-everywhere', { webhooks: [UPDATED] });
    expect(response.status).toBe(200);
    const { webhooks } = (await response.json()) as { webhooks: Webhook[] };
    expect(webhooks.map((w) => w.cloudId).sort()).toEqual([...sites.values()].sort());
    for (const webhook of webhooks) {
      expect(webhook).toMatchObject({ events: ['jira:issue_updated'], jqlFilter: 'project = ABC', status: 'active', lastError: null });
      expect(webhook.jiraWebhookId).toEqual(expect.any(Number));
      expect(webhook.expiresAt).toBe(new Date(clock.now().getTime() + 30 * DAY).toISOString());
    }
    expect(await list('hooks-everywhere')).toEqual(webhooks);
    expect(await jira()).toMatchObject({ live: 3, registered: 3, duplicateRegistrations: 0 });

    // The same PUT again changes nothing at Jira.
    expect((await put('hooks-everywhere', { webhooks: [UPDATED] })).status).toBe(200);
    expect(await jira()).toMatchObject({ live: 3, registered: 3 });
  });

  it('registers only on the sites asked for, and removes what is no longer wanted', async () => {
    const sites = await connected('hooks-one-site', 'alice');
    const acme = sites.get('acme')!;
    expect((await put('hooks-one-site', { webhooks: [UPDATED] })).status).toBe(200);
    const created = { events: ['jira:issue_created'], jqlFilter: 'issuetype = Bug' };
    const response = await put('hooks-one-site', { webhooks: [created], cloudIds: [acme] });
    expect(response.status).toBe(200);
    const webhooks = await list('hooks-one-site');
    expect(webhooks).toEqual([expect.objectContaining({ cloudId: acme, events: ['jira:issue_created'], status: 'active' })]);
    expect(await jira()).toMatchObject({ live: 1, registered: 4, deleted: 3 });
  });

  it("answers 400 invalid_subscription with Jira's reason and leaves nothing half-registered", async () => {
    await connected('hooks-invalid', 'alice');
    expect((await put('hooks-invalid', { webhooks: [UPDATED] })).status).toBe(200);
    const before = await list('hooks-invalid');
    const response = await put('hooks-invalid', {
      webhooks: [
        { events: ['jira:issue_created'], jqlFilter: 'project = XYZ' },
        { events: ['jira:issue_updated'], jqlFilter: 'text ~ "fire"' },
      ],
    });
    const body = (await response.clone().json()) as { error: { message: string } };
    expect(await errorOf(response)).toEqual([400, 'invalid_subscription']);
    expect(body.error.message).toContain('The field text is not supported in webhook JQL filters.');
    expect(await list('hooks-invalid')).toEqual(before);
    expect(await jira()).toMatchObject({ live: 3 });
  });

  it('answers 409 naming the missing scopes before any call to Jira, and 404 for an unknown user or site', async () => {
    await connected('hooks-no-scope', 'bob');
    await dataSource.query(`UPDATE connections SET scopes = '{read:jira-work,offline_access,read:me}' WHERE user_id = 'hooks-no-scope'`);
    const calls = async () =>
      ((await (await fetch(`${app.baseUrl}/sandbox/_control/api-calls`)).json()) as { calls: unknown[] }).calls.length;
    const before = await calls();
    const response = await put('hooks-no-scope', { webhooks: [UPDATED] });
    const message = ((await response.clone().json()) as { error: { message: string } }).error.message;
    expect(await errorOf(response)).toEqual([409, 'missing_scopes']);
    expect(message).toContain('manage:jira-webhook');
    expect(message).not.toContain('read:jira-work and');
    expect(await calls()).toBe(before);

    expect(await errorOf(await put('nobody-here', { webhooks: [UPDATED] }))).toEqual([404, 'connection_not_found']);
    await connected('hooks-bad-site', 'bob');
    expect(await errorOf(await put('hooks-bad-site', { webhooks: [UPDATED], cloudIds: ['not-a-site-of-bob'] }))).toEqual([
      404,
      'site_not_found',
    ]);
    expect(await errorOf(await put('hooks-bad-site', { webhooks: [{ events: [], jqlFilter: 'project = A' }] }))).toEqual([
      400,
      'invalid_request',
    ]);
  });

  it('leaves a site that fails for another reason failing with lastError, and the daemon registers it later', async () => {
    await connected('hooks-failing', 'alice');
    await sandboxControl(app, 'faults', { count: 1, endpoint: 'api', status: 503, productPath: '/rest/api/3/webhook' });
    const response = await put('hooks-failing', { webhooks: [UPDATED] });
    expect(response.status).toBe(200);
    const webhooks = await list('hooks-failing');
    const failing = webhooks.filter((w) => w.status === 'failing');
    expect(failing).toHaveLength(1);
    expect(failing[0]).toMatchObject({ jiraWebhookId: null, expiresAt: null, lastError: expect.stringContaining('503') });
    expect(webhooks.filter((w) => w.status === 'active')).toHaveLength(2);

    clock.advance(5 * 60_000);
    await tick();
    expect((await list('hooks-failing')).map((w) => w.status)).toEqual(['active', 'active', 'active']);
    expect(await jira()).toMatchObject({ live: 3, registered: 3, duplicateRegistrations: 0 });
  });

  it('counts a pass that fails before it can save toward the backoff, and forgets the count after one that works', async () => {
    await connected('hooks-backoff', 'alice');
    expect((await put('hooks-backoff', { webhooks: [UPDATED] })).status).toBe(200);
    const state = async () => {
      const [row] = await dataSource.query(
        `SELECT s.consecutive_failures AS failures, s.due_at, s.lease_id FROM jira_webhook_subscriptions s
         JOIN connections c ON c.id = s.connection_id WHERE c.user_id = 'hooks-backoff'`,
      );
      return row as { failures: number; due_at: Date; lease_id: string | null };
    };
    const repository = app.app.get(JiraWebhooksRepository);
    const reads = jest.spyOn(repository, 'registrations');
    try {
      reads.mockRejectedValueOnce(new Error('Connection terminated unexpectedly'));
      reads.mockRejectedValueOnce(new Error('Connection terminated unexpectedly'));
      clock.advance(7 * 3600_000);
      await tick();
      const first = await state();
      expect(first).toMatchObject({ failures: 1, lease_id: null });
      clock.set(first.due_at);
      await tick();
      const second = await state();
      expect(second).toMatchObject({ failures: 2, lease_id: null });
      // Backoff with full jitter after the second failure: at most base × 2 (REFRESH_POLICY), never past it.
      expect(second.due_at.getTime() - clock.now().getTime()).toBeLessThanOrEqual(2 * REFRESH_POLICY.backoffBaseMs);
      clock.set(second.due_at);
      await tick();
      expect(await state()).toMatchObject({ failures: 0, lease_id: null });
    } finally {
      reads.mockRestore();
    }
  });

  it('extends every registration before JIRA_WEBHOOK_EXTEND_BEFORE_DAYS remain, and never lets one expire', async () => {
    await connected('hooks-extended', 'alice');
    expect((await put('hooks-extended', { webhooks: [UPDATED] })).status).toBe(200);
    for (let day = 0; day < 75; day += 5) {
      clock.advance(5 * DAY);
      await tick();
    }
    const webhooks = await list('hooks-extended');
    for (const webhook of webhooks) {
      expect(webhook.status).toBe('active');
      expect(new Date(webhook.expiresAt!).getTime() - clock.now().getTime()).toBeGreaterThan(10 * DAY);
    }
    expect(await jira()).toMatchObject({ live: 3, expired: 0, duplicateRegistrations: 0 });
    expect((await jira()).extended).toBeGreaterThanOrEqual(9);
  });

  it('registers again what Jira no longer lists', async () => {
    await connected('hooks-lost', 'bob');
    await sandboxControl(app, 'settings', { jiraWebhookLifetimeSeconds: 1 });
    expect((await put('hooks-lost', { webhooks: [UPDATED] })).status).toBe(200);
    clock.advance(2_000);
    await sandboxControl(app, 'settings', { jiraWebhookLifetimeSeconds: 30 * 86_400 });
    expect((await put('hooks-lost', { webhooks: [UPDATED] })).status).toBe(200);
    expect(await list('hooks-lost')).toEqual([expect.objectContaining({ status: 'active', jiraWebhookId: 2 })]);
    expect(await jira()).toMatchObject({ live: 1, expired: 1 });
  });

  it('forwards a verified delivery as one jira.event per matched connection, once, before answering 202', async () => {
    const alice = await connected('hooks-alice', 'alice');
    await connected('hooks-bob', 'bob');
    expect((await put('hooks-alice', { webhooks: [UPDATED] })).status).toBe(200);
    expect((await put('hooks-bob', { webhooks: [UPDATED] })).status).toBe(200);
    const acme = alice.get('acme')!;

    const delivered = await deliver({ cloudId: acme, issueKey: 'ABC-7', duplicate: true });
    expect(delivered.statuses).toEqual([202, 202]);
    const events = await jiraEvents();
    expect(events.map((e) => e.userId).sort()).toEqual(['hooks-alice', 'hooks-bob']);
    const byUser = new Map((await list('hooks-alice')).map((w) => [w.cloudId, w]));
    const aliceEvent = events.find((e) => e.userId === 'hooks-alice')!.body;
    expect(aliceEvent).toMatchObject({
      type: 'jira.event',
      userId: 'hooks-alice',
      cloudId: acme,
      jiraWebhookIds: [byUser.get(acme)!.jiraWebhookId],
      event: { webhookEvent: 'jira:issue_updated', matchedWebhookIds: delivered.matchedWebhookIds, issue: { key: 'ABC-7' } },
    });
    expect(Object.keys(aliceEvent)).toEqual(['id', 'type', 'userId', 'at', 'cloudId', 'jiraWebhookIds', 'event']);
    expect(byUser.get(acme)!.lastDeliveryAt).toBe(clock.now().toISOString());

    // Another site's registrations may carry the same ids: only acme's connection hears of acme.
    await deliver({ cloudId: alice.get('umbrella')!, issueKey: 'ABC-8' });
    expect((await jiraEvents()).filter((e) => e.body.cloudId === alice.get('umbrella'))).toHaveLength(1);
    expect(await jiraEvents()).toHaveLength(3);
  });

  it('answers 401 for a delivery without a valid JWT and stores nothing; 202 for ids of no registration', async () => {
    const url = `${app.baseUrl}/atlassian/jira-webhooks`;
    const body = JSON.stringify({
      webhookEvent: 'jira:issue_updated',
      matchedWebhookIds: [1],
      issue: { self: 'https://acme.atlassian.net/rest/api/3/issue/1' },
    });
    const send = (authorization: string | undefined, identifier: string) =>
      fetch(url, {
        method: 'POST',
        headers: {
          'Content-Type': 'application/json',
          'X-Atlassian-Webhook-Identifier': identifier,
          ...(authorization ? { Authorization: authorization } : {}),
        },
        body,
      });
    const now = Math.floor(clock.now().getTime() / 1000);
    const signed = (secret: string) =>
      new SignJWT({ iss: app.config.atlassian.clientId })
        .setProtectedHeader({ alg: 'HS256' })
        .setIssuedAt(now)
        .setExpirationTime(now + 60)
        .sign(new TextEncoder().encode(secret));

    expect((await send(undefined, 'no-jwt')).status).toBe(401);
    expect((await send(`Bearer ${await signed('not-the-secret')}`, 'forged')).status).toBe(401);
    const stored = async () => Number((await dataSource.query(`SELECT count(*) AS n FROM jira_webhook_deliveries`))[0].n);
    const before = await stored();
    expect((await send(`Bearer ${await signed('not-the-secret')}`, 'forged-2')).status).toBe(401);
    expect(await stored()).toBe(before);

    const unknown = await send(`Bearer ${await signed(app.config.atlassian.clientSecret)}`, 'unknown-ids');
    expect(unknown.status).toBe(202);
    expect(await stored()).toBe(before + 1);
    expect(await jiraEvents()).toEqual([]);

    const metrics = await (await fetch(`${app.baseUrl}/metrics`)).text();
    expect(metrics).toMatch(/jira_webhook_deliveries_total\{outcome="rejected"\} [1-9]/);
    expect(metrics).toMatch(/jira_webhook_deliveries_total\{outcome="unknown"\} [1-9]/);
    expect(metrics).toMatch(/jira_webhook_registrations\{status="active"\} \d+/);
  });

  it('pauses with the connection, and registers again after the user reconnects', async () => {
    await connected('hooks-paused', 'bob');
    expect((await put('hooks-paused', { webhooks: [UPDATED] })).status).toBe(200);
    await dataSource.query(`UPDATE connections SET status = 'reauth_required' WHERE user_id = 'hooks-paused'`);
    expect((await list('hooks-paused')).map((w) => w.status)).toEqual(['paused']);
    expect(await errorOf(await put('hooks-paused', { webhooks: [UPDATED] }))).toEqual([409, 'reauth_required']);

    // While paused the daemon leaves it alone, and Jira lets it expire.
    await sandboxControl(app, 'settings', { jiraWebhookLifetimeSeconds: 60 });
    const extendedBefore = (await jira()).extended;
    clock.advance(31 * DAY);
    await tick();
    expect((await jira()).extended).toBe(extendedBefore);
    expect(await jira()).toMatchObject({ live: 0, expired: 1 });

    await sandboxControl(app, 'settings', { jiraWebhookLifetimeSeconds: 30 * 86_400 });
    await connected('hooks-paused', 'bob');
    await tick();
    expect(await list('hooks-paused')).toEqual([expect.objectContaining({ status: 'active', jiraWebhookId: 2 })]);
    expect(await jira()).toMatchObject({ live: 1, registered: 2 });
  });

  it('pauses them when the daemon finds the grant revoked, and leaves that connection alone afterwards', async () => {
    await connected('hooks-revoked', 'bob');
    expect((await put('hooks-revoked', { webhooks: [UPDATED] })).status).toBe(200);
    await sandboxControl(app, `grants/${encodeURIComponent(accountIdFor('bob'))}/revoke`);
    clock.advance(21 * DAY);
    await tick();
    expect((await list('hooks-revoked')).map((w) => w.status)).toEqual(['paused']);
    const [connection] = await dataSource.query(`SELECT status FROM connections WHERE user_id = 'hooks-revoked'`);
    expect(connection.status).toBe('reauth_required');
    const [lease] = await dataSource.query(
      `SELECT s.lease_id FROM jira_webhook_subscriptions s JOIN connections c ON c.id = s.connection_id WHERE c.user_id = 'hooks-revoked'`,
    );
    expect(lease.lease_id).toBeNull();
    const extended = (await jira()).extended;
    clock.advance(5 * DAY);
    await tick();
    expect((await jira()).extended).toBe(extended);
  });

  it('DELETE removes them at Jira and here; DELETE …/connection deletes them at Jira before forgetting the tokens', async () => {
    await connected('hooks-deleted', 'alice');
    expect((await put('hooks-deleted', { webhooks: [UPDATED] })).status).toBe(200);
    const deleted = await remove('hooks-deleted');
    expect(deleted.status).toBe(204);
    expect(await list('hooks-deleted')).toEqual([]);
    expect(await jira()).toMatchObject({ live: 0, deleted: 3 });

    expect((await put('hooks-deleted', { webhooks: [UPDATED] })).status).toBe(200);
    expect(await jira()).toMatchObject({ live: 3 });
    expect((await callApi(app, 'DELETE', userPath('hooks-deleted', '/connection'))).status).toBe(204);
    expect(await jira()).toMatchObject({ live: 0, deleted: 6 });
    expect(await dataSource.query(`SELECT * FROM jira_webhook_registrations`)).toEqual([]);
  });
});

describePostgres('JIRA_WEBHOOK_DEFAULTS', () => {
  const clock = new ManualClock('2026-03-02T09:00:00.000Z');
  let app: TestApp;

  beforeAll(async () => {
    app = await startTestApp({
      clock,
      env: {
        ATLASSIAN_SCOPES: SCOPES,
        REFRESH_INTERVAL_SECONDS: '3600',
        JIRA_WEBHOOK_DEFAULTS: JSON.stringify([{ events: ['jira:issue_created', 'jira:issue_updated'], jqlFilter: 'project = DEF' }]),
      },
    });
  });
  afterAll(() => app?.close());

  it('are registered for every new connection on each of its sites', async () => {
    expect((await connectUser(app, 'hooks-defaults', 'alice')).response.status).toBe(200);
    await app.app.get(JiraWebhooksScheduler).tick();
    const response = await callApi(app, 'GET', userPath('hooks-defaults', '/jira-webhooks'));
    const { webhooks } = (await response.json()) as { webhooks: Webhook[] };
    expect(webhooks).toHaveLength(3);
    for (const webhook of webhooks) expect(webhook).toMatchObject({ jqlFilter: 'project = DEF', status: 'active' });
  });
});
