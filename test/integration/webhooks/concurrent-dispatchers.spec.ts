import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { Logger } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { SystemClock } from '../../../src/common/clock.js';
import { loadConfig } from '../../../src/config/app-config.js';
import { dataSourceOptions } from '../../../src/database/data-source.js';
import { OutboxRepository } from '../../../src/webhooks/outbox.repository.js';
import { WebhookDeliveryRepository } from '../../../src/webhooks/webhook-delivery.repository.js';
import { WebhookDeliveryService } from '../../../src/webhooks/webhook-delivery.service.js';
import { DEFAULT_WEBHOOK_DELIVERY_OPTIONS } from '../../../src/webhooks/webhook-delivery.options.js';
import { MathRandomWebhookJitter, WebhookRetryPolicy } from '../../../src/webhooks/webhook-retry.policy.js';
import { WebhookSender } from '../../../src/webhooks/webhook.sender.js';
import { describePostgres, openMigratedDatabase, type OpenedDatabase } from '../../utils/database.js';
import { WebhookReceiver } from './webhook-receiver.js';

const EVENTS = 60;
// Creating and migrating a database (embedded ones especially) takes seconds on a busy machine.
const SETUP_TIMEOUT_MS = 60_000;

/** Two replicas, each with its own connection pool, on one database: every event is sent by exactly one of them. */
describePostgres('two dispatchers on one database', () => {
  let db: OpenedDatabase;
  let replicas: DataSource[];
  const receiver = new WebhookReceiver();

  beforeAll(async () => {
    Logger.overrideLogger(false);
    db = await openMigratedDatabase('postgres');
    replicas = [new DataSource(dataSourceOptions({ database: { url: db.url, pgliteDir: '', migrationsRun: false } })), db.dataSource];
    await replicas[0].initialize();
  }, SETUP_TIMEOUT_MS);
  afterAll(async () => {
    await receiver.close();
    await replicas?.[0].destroy();
    await db?.close();
  });

  it('never send the same event twice within one tick', async () => {
    const config = loadConfig({
      WEBHOOK_URL: await receiver.listen(),
      WEBHOOK_SECRET: 'whsec-test-0123456789abcdef',
      TOKEN_ENCRYPTION_KEYS: `k1:${randomBytes(32).toString('base64')}`,
    });
    const options = { ...DEFAULT_WEBHOOK_DELIVERY_OPTIONS, batchSize: 7 };
    const dispatchers = replicas.map(
      (dataSource) =>
        new WebhookDeliveryService(
          new WebhookDeliveryRepository(dataSource),
          new WebhookSender(config, options),
          new WebhookRetryPolicy(options, new MathRandomWebhookJitter()),
          new SystemClock(),
          options,
        ),
    );
    const outbox = new OutboxRepository();
    const at = new Date(Date.now() - 1_000);
    await db.dataSource.transaction(async (manager) => {
      for (let i = 0; i < EVENTS; i++) await outbox.enqueue(manager, { type: 'connection.created', userId: `user-${i}` }, at);
    });

    // Both tick at the same moment, round after round, each claiming a small batch, until the outbox is empty.
    const deliveredBy = [0, 0];
    for (let round = 0; deliveredBy[0] + deliveredBy[1] < EVENTS && round < EVENTS; round++) {
      const counts = await Promise.all(dispatchers.map((d) => d.deliverDue()));
      counts.forEach((c, i) => (deliveredBy[i] += c.delivered));
    }

    const ids = receiver.received.map((r) => r.headers['x-webhook-id']);
    expect(ids).toHaveLength(EVENTS);
    expect(new Set(ids).size).toBe(EVENTS);
    expect(deliveredBy[0]).toBeGreaterThan(0);
    expect(deliveredBy[1]).toBeGreaterThan(0);
    const [{ pending }] = await db.dataSource.query('SELECT count(*)::int AS pending FROM webhook_outbox WHERE delivered_at IS NULL');
    expect(pending).toBe(0);
  });
});
