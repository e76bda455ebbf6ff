import { createHmac } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { SchedulerRegistry } from '@nestjs/schedule';
import pg from 'pg';
import { DataSource } from 'typeorm';
import { OutboxRepository, type OutboxEvent } from '../../src/webhooks/outbox.repository.js';
import { WEBHOOK_DELIVERY_INTERVAL, WebhookDeliveryScheduler } from '../../src/webhooks/webhook-delivery.scheduler.js';
import { startTestApp, type TestApp } from '../utils/app.js';
import { ManualClock } from '../utils/connections.js';
import { createTestDatabase, describePostgres } from '../utils/database.js';
import { WebhookReceiver } from '../integration/webhooks/webhook-receiver.js';

const SECRET = 'whsec-e2e-0123456789abcdef';

function enqueue(app: TestApp, event: OutboxEvent, at = new Date()): Promise<string> {
  return app.app.get(DataSource).transaction((manager) => new OutboxRepository().enqueue(manager, event, at));
}

/** The value of each of the outbox's gauges, as Prometheus reads them. */
async function outboxGauges(app: TestApp): Promise<Record<string, number>> {
  const text = await (await fetch(`${app.baseUrl}/metrics`)).text();
  return Object.fromEntries([...text.matchAll(/^(atlassian_webhook_\w+) (\S+)$/gm)].map(([, name, value]) => [name, Number(value)]));
}

describe('webhooks in the running service', () => {
  let app: TestApp | undefined;
  let receiver: WebhookReceiver;
  beforeEach(() => {
    receiver = new WebhookReceiver();
  });
  afterEach(async () => {
    await app?.close();
    app = undefined;
    await receiver.close();
  });

  it('are delivered by the scheduled loop, signed, and logged as counts without their bodies', async () => {
    app = await startTestApp({ captureLogs: true, env: { WEBHOOK_URL: await receiver.listen(), WEBHOOK_SECRET: SECRET } });
    expect(app.app.get(SchedulerRegistry).getIntervals()).toContain(WEBHOOK_DELIVERY_INTERVAL);

    const id = await enqueue(app, { type: 'connection.created', userId: 'e2e-user', data: { marker: 'BODY-MARKER-42' } });
    await app.app.get(WebhookDeliveryScheduler).tick();
    await receiver.waitFor(1);

    const [{ raw, headers }] = receiver.received;
    expect(headers['x-signature']).toBe(`sha256=${createHmac('sha256', SECRET).update(raw).digest('hex')}`);
    expect(JSON.parse(raw.toString('utf8'))).toMatchObject({ id, type: 'connection.created', userId: 'e2e-user' });
    const logs = app.logs();
    expect(logs).toContain('1 delivered');
    expect(logs).not.toContain('BODY-MARKER-42');
    expect(logs).not.toContain(SECRET);
  }, 30_000);

  it('are recorded but never sent without WEBHOOK_URL', async () => {
    await receiver.listen();
    app = await startTestApp();
    expect(app.app.get(SchedulerRegistry).getIntervals()).not.toContain(WEBHOOK_DELIVERY_INTERVAL);

    const id = await enqueue(app, { type: 'connection.deleted', userId: 'e2e-user' });
    expect(await app.app.get(WebhookDeliveryScheduler).tick()).toEqual({ delivered: 0, retrying: 0, dead: 0, handedBack: 0 });

    const rows: { attempts: number; delivered_at: Date | null }[] = await app.app
      .get(DataSource)
      .query('SELECT attempts, delivered_at FROM webhook_outbox WHERE id = $1', [id]);
    expect(rows).toEqual([{ attempts: 0, delivered_at: null }]);
    expect(receiver.received).toHaveLength(0);
  }, 30_000);

  it('show their backlog in /metrics: pending, given up, and the age of the oldest pending', async () => {
    const clock = new ManualClock();
    app = await startTestApp({ clock });
    expect(await outboxGauges(app)).toEqual({
      atlassian_webhook_events_pending: 0,
      atlassian_webhook_events_given_up: 0,
      atlassian_webhook_oldest_pending_seconds: 0,
    });

    const oldest = await enqueue(app, { type: 'connection.created', userId: 'e2e-user' }, clock.now());
    clock.advance(30_000);
    await enqueue(app, { type: 'connection.deleted', userId: 'e2e-user' }, clock.now());
    clock.advance(60_000);
    expect(await outboxGauges(app)).toEqual({
      atlassian_webhook_events_pending: 2,
      atlassian_webhook_events_given_up: 0,
      atlassian_webhook_oldest_pending_seconds: 90,
    });

    await app.app.get(DataSource).query('UPDATE webhook_outbox SET dead_at = $2 WHERE id = $1', [oldest, clock.now()]);
    expect(await outboxGauges(app)).toEqual({
      atlassian_webhook_events_pending: 1,
      atlassian_webhook_events_given_up: 1,
      atlassian_webhook_oldest_pending_seconds: 60,
    });
  }, 30_000);
});

describePostgres('webhooks at shutdown', () => {
  it('a send in flight is aborted and its event handed back, due at once, without holding up the close', async () => {
    const database = await createTestDatabase();
    const receiver = new WebhookReceiver();
    try {
      receiver.behaviour = 'hang';
      const app = await startTestApp({ databaseUrl: database.url, env: { WEBHOOK_URL: await receiver.listen(), WEBHOOK_SECRET: SECRET } });
      const id = await enqueue(app, { type: 'connection.created', userId: 'e2e-user' });
      void app.app.get(WebhookDeliveryScheduler).tick();
      await receiver.waitFor(1);

      const closing = Date.now();
      await app.close();
      expect(Date.now() - closing).toBeLessThan(5_000);

      const client = new pg.Client({ connectionString: database.url });
      await client.connect();
      try {
        const { rows } = await client.query(
          'SELECT attempts, delivered_at, next_attempt_at <= now() AS due FROM webhook_outbox WHERE id = $1',
          [id],
        );
        expect(rows).toEqual([{ attempts: 0, delivered_at: null, due: true }]);
      } finally {
        await client.end();
      }
    } finally {
      await receiver.close();
      await database.drop();
    }
  }, 30_000);
});
