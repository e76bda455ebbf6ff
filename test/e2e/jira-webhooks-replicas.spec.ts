import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { JiraWebhooksScheduler } from '../../src/jira-webhooks/jira-webhooks.scheduler.js';
import type { JiraWebhookStats } from '../../src/sandbox/sandbox.jira-webhooks.js';
import { callApi, userPath } from '../utils/api.js';
import { startTestApp, type TestApp } from '../utils/app.js';
import { ManualClock } from '../utils/connections.js';
import { createTestDatabase, describePostgres, type TestDatabase } from '../utils/database.js';
import { consent, sandboxControl, startSignIn, TestBrowser } from './connect-browser.js';

const USERS = 12;
const SITES = 2;
/** The sandbox's registrations live an hour, extended once less than 20 minutes remain (every 40 minutes). */
const LIFETIME_SECONDS = 3600;
const EXTEND_BEFORE_MINUTES = 20;
const STEP_MS = 5 * 60_000;
const STEPS = 36;
const UPDATED = { events: ['jira:issue_updated'], jqlFilter: 'project = ABC' };

/** Three replicas of the service on one Postgres and one Atlassian (the first one's sandbox), their daemons racing. */
describePostgres('Jira webhooks kept by three replicas at once', () => {
  const clock = new ManualClock('2026-03-02T09:00:00.000Z');
  let database: TestDatabase;
  const replicas: TestApp[] = [];

  beforeAll(async () => {
    database = await createTestDatabase();
    const shared = {
      TOKEN_ENCRYPTION_KEYS: `shared:${randomBytes(32).toString('base64')}`,
      ATLASSIAN_SCOPES: 'read:jira-work manage:jira-webhook',
      REFRESH_INTERVAL_SECONDS: '3600',
      JIRA_WEBHOOK_DEFAULTS: JSON.stringify([UPDATED]),
      JIRA_WEBHOOK_EXTEND_BEFORE_DAYS: String(EXTEND_BEFORE_MINUTES / 1440),
    };
    replicas.push(await startTestApp({ clock, databaseUrl: database.url, env: shared }));
    const first = replicas[0];
    const atlassian = `${first.baseUrl}/sandbox`;
    for (let i = 0; i < 2; i += 1) {
      replicas.push(
        await startTestApp({
          clock,
          databaseUrl: database.url,
          env: { ...shared, PUBLIC_URL: first.baseUrl, ATLASSIAN_AUTH_URL: atlassian, ATLASSIAN_API_URL: atlassian },
        }),
      );
    }
    await sandboxControl(first, 'settings', { jiraWebhookLifetimeSeconds: LIFETIME_SECONDS });
    for (let n = 0; n < USERS; n += 1) {
      const browser = new TestBrowser(first);
      const signIn = await startSignIn(first, browser, `replicas-${n}`);
      expect((await browser.get(await consent(signIn.authorizeUrl, { user: `replicas-${n}`, sites: SITES }))).status).toBe(200);
    }
  }, 120_000);
  afterAll(async () => {
    for (const replica of replicas.reverse()) await replica.close();
    await database?.drop();
  });

  async function jira(): Promise<JiraWebhookStats> {
    return (await (await fetch(`${replicas[0].baseUrl}/sandbox/_control/jira-webhooks`)).json()) as JiraWebhookStats;
  }
  const ticks = () => Promise.all(replicas.map((replica) => replica.app.get(JiraWebhooksScheduler).tick()));

  it('registers each wanted webhook once and extends it once per due time, however the daemons and PUTs race', async () => {
    await ticks();
    expect(await jira()).toMatchObject({ live: USERS * SITES, registered: USERS * SITES, duplicateRegistrations: 0 });

    for (let step = 0; step < STEPS; step += 1) {
      clock.advance(STEP_MS);
      // The same PUT through every replica at once, for a few users, while the daemons run.
      const user = `replicas-${step % USERS}`;
      const puts = replicas.map((replica) => callApi(replica, 'PUT', userPath(user, '/jira-webhooks'), { body: { webhooks: [UPDATED] } }));
      const answers = await Promise.all([...puts, ticks()]);
      for (const answer of answers.slice(0, replicas.length)) expect((answer as Response).status).toBe(200);
    }

    const stats = await jira();
    expect(stats).toMatchObject({ live: USERS * SITES, registered: USERS * SITES, duplicateRegistrations: 0, expired: 0, deleted: 0 });
    // Each registration is extended once every 40 minutes of the three hours, plus the extension that reads its first
    // expirationDate: about 5 each. Two workers extending the same one would double that.
    const every = (LIFETIME_SECONDS / 60 - EXTEND_BEFORE_MINUTES) * 60_000;
    const periods = (STEPS * STEP_MS) / every;
    expect(stats.extended).toBeLessThanOrEqual(USERS * SITES * (Math.floor(periods) + 1));
    expect(stats.extended).toBeGreaterThanOrEqual(USERS * SITES * Math.floor(periods));
    for (let n = 0; n < USERS; n += 1) {
      const { webhooks } = (await (await callApi(replicas[n % 3], 'GET', userPath(`replicas-${n}`, '/jira-webhooks'))).json()) as {
        webhooks: { status: string; expiresAt: string }[];
      };
      expect(webhooks.map((w) => w.status)).toEqual(['active', 'active']);
      for (const webhook of webhooks) expect(new Date(webhook.expiresAt).getTime()).toBeGreaterThan(clock.now().getTime());
    }
  }, 240_000);
});
