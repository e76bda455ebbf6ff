import { createHmac } from 'node:crypto';
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { WebhookDeliveryScheduler } from '../../src/webhooks/webhook-delivery.scheduler.js';
import { startTestApp, TEST_API_KEY, type TestApp } from '../utils/app.js';
import { describePostgres } from '../utils/database.js';
import { connectionRows, connectUser, sandboxControl } from './connect-browser.js';
import { WebhookReceiver } from '../integration/webhooks/webhook-receiver.js';

const SECRET = 'whsec-flow-0123456789abcdef';
// Booting the service on a fresh database takes seconds on a busy machine.
const SETUP_TIMEOUT_MS = 60_000;

/** The events of a user's life, from the real connect and refresh code to the receiver, through the delivery loop. */
describePostgres('webhooks for a connection, end to end', () => {
  let app: TestApp;
  const receiver = new WebhookReceiver();

  beforeAll(async () => {
    app = await startTestApp({ env: { WEBHOOK_URL: await receiver.listen(), WEBHOOK_SECRET: SECRET } });
  }, SETUP_TIMEOUT_MS);
  afterAll(async () => {
    await app?.close();
    await receiver.close();
  });

  /** A tick now instead of waiting for the interval; an interval tick already running is awaited instead. */
  async function deliver(count: number): Promise<void> {
    await app.app.get(WebhookDeliveryScheduler).tick();
    await receiver.waitFor(count);
  }

  function delivered(index: number): Record<string, unknown> {
    const { raw, headers } = receiver.received[index];
    expect(headers['x-signature']).toBe(`sha256=${createHmac('sha256', SECRET).update(raw).digest('hex')}`);
    return JSON.parse(raw.toString('utf8')) as Record<string, unknown>;
  }

  it('tell the receiver when a user connects, and when Atlassian revokes the grant', async () => {
    // Short-lived access tokens, so that asking for a long validity makes the service refresh at once.
    await sandboxControl(app, 'settings', { accessTokenTtlSeconds: 1_200 });
    const { response } = await connectUser(app, 'flow-user', 'flow-login');
    expect(response.status).toBeLessThan(400);
    await deliver(1);
    const created = delivered(0);
    expect(created).toMatchObject({ type: 'connection.created', userId: 'flow-user', id: expect.any(String), at: expect.any(String) });
    expect(new Date(created.at as string).toISOString()).toBe(created.at);

    const [row] = await connectionRows(app, 'flow-user');
    await sandboxControl(app, `grants/${row.atlassian_account_id as string}/revoke`);
    const refused = await fetch(`${app.baseUrl}/v1/users/flow-user/access-token`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${TEST_API_KEY}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ minValiditySeconds: 3_000 }),
    });
    expect(refused.status).toBe(409);

    await deliver(2);
    const reauth = delivered(1);
    expect(reauth).toMatchObject({ type: 'connection.reauth_required', userId: 'flow-user' });
    expect(reauth.id).not.toBe(created.id);
    expect(receiver.received).toHaveLength(2);
  }, 30_000);
});
