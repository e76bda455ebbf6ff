import { createHmac } from 'node:crypto';
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { LifecycleScheduler } from '../../src/lifecycle/lifecycle.scheduler.js';
import { RefreshService } from '../../src/refresh/refresh.service.js';
import { WebhookDeliveryScheduler } from '../../src/webhooks/webhook-delivery.scheduler.js';
import { WebhookReceiver } from '../integration/webhooks/webhook-receiver.js';
import { callApi, userPath } from '../utils/api.js';
import { startTestApp, type TestApp } from '../utils/app.js';
import { ManualClock } from '../utils/connections.js';
import { describePostgres } from '../utils/database.js';
import { consent, sandboxControl, startSignIn, TestBrowser } from './connect-browser.js';

const SECRET = 'whsec-lifecycle-0123456789abcdef';
const DAY = 86_400_000;
const MINUTE = 60_000;
/** Events written in one transaction share their time; among those, the order in which the service writes them. */
const WRITE_ORDER = ['connection.created', 'connection.reconsent_due', 'connection.scopes_outdated', 'connection.reauth_required'];

/**
 * A year in two days: the sandbox ends grants 2 days after consent, and the service warns when less than 364 of its
 * 365 days remain, so a day after each consent. Every webhook goes through the outbox, the signed delivery and a real
 * receiver. With PRINT_WEBHOOKS=1 the run prints them in order.
 */
describePostgres('the webhooks of a connection through two shortened consent years', () => {
  const clock = new ManualClock();
  const receiver = new WebhookReceiver();
  let app: TestApp;

  beforeAll(async () => {
    app = await startTestApp({
      clock,
      env: {
        WEBHOOK_URL: await receiver.listen(),
        WEBHOOK_SECRET: SECRET,
        RECONSENT_WARNING_DAYS: '364',
        ATLASSIAN_SCOPES: 'read:jira-work write:jira-work',
        REFRESH_INTERVAL_SECONDS: '3600',
      },
    });
    await sandboxControl(app, 'settings', { consentLifetimeSeconds: 2 * 86_400 });
  }, 60_000);
  afterAll(async () => {
    await app?.close();
    await receiver.close();
  });

  async function connect(scope?: string): Promise<void> {
    const browser = new TestBrowser(app);
    const signIn = await startSignIn(app, browser, 'demo-user');
    if (scope !== undefined) signIn.authorizeUrl.searchParams.set('scope', scope);
    expect((await browser.get(await consent(signIn.authorizeUrl, { user: 'alice' }))).status).toBe(200);
  }

  /** What the daemon does on its own every REFRESH_INTERVAL_SECONDS, then the delivery of what it wrote. */
  async function daemonRuns(): Promise<void> {
    await app.app.get(RefreshService).runDueRefreshes();
    await app.app.get(LifecycleScheduler).tick();
    await app.app.get(WebhookDeliveryScheduler).tick();
  }

  function delivered(): Record<string, unknown>[] {
    const bodies = receiver.received.map(({ raw, headers }) => {
      expect(headers['x-signature']).toBe(`sha256=${createHmac('sha256', SECRET).update(raw).digest('hex')}`);
      return JSON.parse(raw.toString('utf8')) as Record<string, unknown>;
    });
    const order = (body: Record<string, unknown>) => `${body.at as string}#${WRITE_ORDER.indexOf(body.type as string)}`;
    return bodies.sort((a, b) => (order(a) < order(b) ? -1 : 1));
  }

  it('created, reconsent_due, reconnected with fewer scopes, scopes_outdated, reconsent_due, and the end', async () => {
    const firstConsent = clock.now();
    await connect();
    await daemonRuns();

    clock.set(new Date(firstConsent.getTime() + DAY - MINUTE));
    await daemonRuns();
    expect(receiver.received).toHaveLength(1);
    clock.set(new Date(firstConsent.getTime() + DAY + MINUTE));
    await daemonRuns();
    await receiver.waitFor(2);

    const secondConsent = clock.advance(MINUTE);
    await connect('read:jira-work offline_access read:me');
    await daemonRuns();
    await receiver.waitFor(4);

    // The first grant's end passes: the reconnect started a new year, at Atlassian and here.
    clock.set(new Date(firstConsent.getTime() + 2 * DAY + MINUTE));
    await daemonRuns();
    clock.set(new Date(secondConsent.getTime() + DAY + MINUTE));
    await daemonRuns();
    await receiver.waitFor(5);

    clock.set(new Date(secondConsent.getTime() + 2 * DAY + MINUTE));
    await daemonRuns();
    await receiver.waitFor(6);
    await daemonRuns();

    const events = delivered();
    if (process.env.PRINT_WEBHOOKS) {
      process.stdout.write(`${events.map((event) => JSON.stringify({ ...event, id: undefined })).join('\n')}\n`);
    }
    const iso = (at: Date, plusDays = 0) => new Date(at.getTime() + plusDays * DAY).toISOString();
    expect(events).toEqual([
      expect.objectContaining({ type: 'connection.created', at: iso(firstConsent) }),
      expect.objectContaining({
        type: 'connection.reconsent_due',
        consentedAt: iso(firstConsent),
        consentExpiresAt: iso(firstConsent, 365),
      }),
      expect.objectContaining({ type: 'connection.created', at: iso(secondConsent) }),
      expect.objectContaining({ type: 'connection.scopes_outdated', consentedAt: iso(secondConsent), missingScopes: ['write:jira-work'] }),
      expect.objectContaining({ type: 'connection.reconsent_due', consentedAt: iso(secondConsent) }),
      expect.objectContaining({ type: 'connection.reauth_required', reason: 'consent_expired' }),
    ]);
    expect(new Set(events.map((event) => event.id)).size).toBe(6);
    expect(events.every((event) => event.userId === 'demo-user')).toBe(true);

    const connection = (await (await callApi(app, 'GET', userPath('demo-user', '/connection'))).json()) as Record<string, unknown>;
    expect(connection).toMatchObject({ status: 'reauth_required', consentedAt: iso(secondConsent), missingScopes: ['write:jira-work'] });
    expect(connection.lastError).toMatch(/^The user's yearly consent ran out/);
  }, 60_000);
});
