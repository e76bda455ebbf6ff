import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { Logger } from '@nestjs/common';
import type { DataSource } from 'typeorm';
import type { Clock } from '../../../src/common/clock.js';
import { loadConfig } from '../../../src/config/app-config.js';
import { OutboxRepository, type OutboxEvent } from '../../../src/webhooks/outbox.repository.js';
import { WebhookDeliveryRepository } from '../../../src/webhooks/webhook-delivery.repository.js';
import { WebhookDeliveryService } from '../../../src/webhooks/webhook-delivery.service.js';
import { DEFAULT_WEBHOOK_DELIVERY_OPTIONS, type WebhookDeliveryOptions } from '../../../src/webhooks/webhook-delivery.options.js';
import { WebhookJitter, WebhookRetryPolicy } from '../../../src/webhooks/webhook-retry.policy.js';
import { WebhookSender } from '../../../src/webhooks/webhook.sender.js';
import { freePort } from '../../utils/app.js';
import { drivers, openMigratedDatabase, type OpenedDatabase } from '../../utils/database.js';
import { WebhookReceiver } from './webhook-receiver.js';

const SECRET = 'whsec-test-0123456789abcdef';
// Creating and migrating a database, or eighty round trips to an embedded one, takes seconds on a busy machine.
const DATABASE_TIMEOUT_MS = 60_000;
const HOUR_MS = 60 * 60_000;
const T0 = new Date('2026-11-27T10:00:00.000Z');

class FakeClock implements Clock {
  constructor(private current: Date) {}
  now(): Date {
    return new Date(this.current);
  }
  set(to: Date): void {
    this.current = new Date(to);
  }
  advance(ms: number): void {
    this.current = new Date(this.current.getTime() + ms);
  }
}

class FixedJitter extends WebhookJitter {
  constructor(private readonly value: number) {
    super();
  }
  next(): number {
    return this.value;
  }
}

interface OutboxRow {
  body: string;
  attempts: number;
  next_attempt_at: Date | null;
  delivered_at: Date | null;
  dead_at: Date | null;
  last_error: string | null;
}

/** The receiver's own check, written independently of the service's signing code. */
function signatureIsValid(raw: Buffer, header: string | string[] | undefined, secret: string): boolean {
  if (typeof header !== 'string' || !header.startsWith('sha256=')) return false;
  const expected = Buffer.from(createHmac('sha256', secret).update(raw).digest('hex'), 'utf8');
  const given = Buffer.from(header.slice('sha256='.length), 'utf8');
  return given.length === expected.length && timingSafeEqual(given, expected);
}

describe.each(drivers)('webhook delivery on %s', (driver) => {
  let db: OpenedDatabase;
  let receiver: WebhookReceiver;
  let clock: FakeClock;

  beforeAll(async () => {
    Logger.overrideLogger(false);
    db = await openMigratedDatabase(driver);
  }, DATABASE_TIMEOUT_MS);
  afterAll(() => db?.close());
  beforeEach(async () => {
    await db.dataSource.query('TRUNCATE webhook_outbox');
    receiver = new WebhookReceiver();
    clock = new FakeClock(T0);
  });
  afterEach(() => receiver.close());

  function dispatcher(
    webhookUrl: string | undefined,
    options: Partial<WebhookDeliveryOptions> = {},
    jitter = 0.5,
    dataSource: DataSource = db.dataSource,
  ): WebhookDeliveryService {
    const env: Record<string, string> = { TOKEN_ENCRYPTION_KEYS: `k1:${randomBytes(32).toString('base64')}` };
    if (webhookUrl) Object.assign(env, { WEBHOOK_URL: webhookUrl, WEBHOOK_SECRET: SECRET });
    const config = loadConfig(env);
    const all = { ...DEFAULT_WEBHOOK_DELIVERY_OPTIONS, ...options };
    return new WebhookDeliveryService(
      new WebhookDeliveryRepository(dataSource),
      new WebhookSender(config, all),
      new WebhookRetryPolicy(all, new FixedJitter(jitter)),
      clock,
      all,
    );
  }

  async function enqueue(event: OutboxEvent, at = clock.now()): Promise<string> {
    return db.dataSource.transaction((manager) => new OutboxRepository().enqueue(manager, event, at));
  }

  async function row(id: string): Promise<OutboxRow> {
    const rows: OutboxRow[] = await db.dataSource.query(
      'SELECT body, attempts, next_attempt_at, delivered_at, dead_at, last_error FROM webhook_outbox WHERE id = $1',
      [id],
    );
    return rows[0];
  }

  it('POSTs the stored body byte for byte, signed over exactly those bytes, and marks it delivered', async () => {
    const service = dispatcher(await receiver.listen());
    const id = await enqueue({ type: 'connection.reauth_required', userId: 'user-1', data: { reason: 'grant revoked — “naïve” ✓' } });

    expect(await service.deliverDue()).toEqual({ delivered: 1, retrying: 0, dead: 0, handedBack: 0 });

    expect(receiver.received).toHaveLength(1);
    const [{ raw, headers }] = receiver.received;
    const stored = await row(id);
    expect(raw.equals(Buffer.from(stored.body, 'utf8'))).toBe(true);
    expect(signatureIsValid(raw, headers['x-signature'], SECRET)).toBe(true);
    expect(signatureIsValid(raw, headers['x-signature'], 'another-secret')).toBe(false);
    expect(headers['content-type']).toBe('application/json');
    expect(headers['x-webhook-id']).toBe(id);
    expect(headers['x-webhook-type']).toBe('connection.reauth_required');
    expect(JSON.parse(raw.toString('utf8'))).toEqual({
      id,
      type: 'connection.reauth_required',
      userId: 'user-1',
      at: T0.toISOString(),
      reason: 'grant revoked — “naïve” ✓',
    });
    expect(stored).toMatchObject({ attempts: 1, delivered_at: T0, next_attempt_at: null, last_error: null });

    expect(await service.deliverDue()).toEqual({ delivered: 0, retrying: 0, dead: 0, handedBack: 0 });
    expect(receiver.received).toHaveLength(1);
  });

  it('keeps an event through a receiver outage, backing off, then delivers the very same bytes', async () => {
    const service = dispatcher(await receiver.listen());
    const id = await enqueue({ type: 'connection.created', userId: 'user-2', data: { atlassianAccountId: 'acc-2' } });
    receiver.behaviour = 500;

    // Full jitter at 0.5: half of 10 s, 20 s, 40 s, 80 s.
    for (const [failure, expectedDelayMs] of [5_000, 10_000, 20_000, 40_000].entries()) {
      expect((await service.deliverDue()).retrying).toBe(1);
      const failed = await row(id);
      expect(failed).toMatchObject({ attempts: failure + 1, last_error: 'HTTP 500', delivered_at: null });
      expect(failed.next_attempt_at!.getTime() - clock.now().getTime()).toBe(expectedDelayMs);

      clock.advance(expectedDelayMs - 1);
      expect((await service.deliverDue()).retrying).toBe(0);
      clock.advance(1);
    }
    expect(receiver.received).toHaveLength(4);

    receiver.behaviour = 204;
    expect((await service.deliverDue()).delivered).toBe(1);
    expect(receiver.received).toHaveLength(5);
    const stored = await row(id);
    expect(stored).toMatchObject({ attempts: 5, delivered_at: clock.now(), next_attempt_at: null });
    for (const { raw, headers } of receiver.received) {
      expect(raw.equals(receiver.received[0].raw)).toBe(true);
      expect(raw.toString('utf8')).toBe(stored.body);
      expect(signatureIsValid(raw, headers['x-signature'], SECRET)).toBe(true);
    }
  });

  it('counts a receiver that refuses connections as a failure and retries', async () => {
    const service = dispatcher(`http://127.0.0.1:${await freePort()}/hooks`);
    const id = await enqueue({ type: 'connection.deleted', userId: 'user-3' });

    expect((await service.deliverDue()).retrying).toBe(1);
    expect(await row(id)).toMatchObject({ attempts: 1, delivered_at: null, last_error: 'could not connect (ECONNREFUSED)' });
  });

  it('gives a receiver that does not answer a timeout, then retries', async () => {
    const service = dispatcher(await receiver.listen(), { timeoutMs: 200 });
    receiver.behaviour = 'hang';
    const id = await enqueue({ type: 'connection.recovered', userId: 'user-4' });

    expect((await service.deliverDue()).retrying).toBe(1);
    expect(await row(id)).toMatchObject({ attempts: 1, last_error: 'no answer within 200 ms' });
  });

  it('does not follow a redirect with the signed body', async () => {
    const service = dispatcher(await receiver.listen());
    receiver.behaviour = 307;
    const id = await enqueue({ type: 'connection.created', userId: 'user-5' });

    expect((await service.deliverDue()).retrying).toBe(1);
    expect(receiver.received).toHaveLength(1);
    expect((await row(id)).last_error).toBe('HTTP 307 (redirects are not followed)');
  });

  it(
    'retries for three days, never waiting more than an hour, then gives the event up',
    async () => {
      const service = dispatcher(await receiver.listen(), {}, 0.999);
      receiver.behaviour = 503;
      const id = await enqueue({ type: 'connection.created', userId: 'user-6' });

      let longestWaitMs = 0;
      let dead = 0;
      while (dead === 0) {
        const counts = await service.deliverDue();
        dead = counts.dead;
        if (counts.retrying === 1) {
          const next = (await row(id)).next_attempt_at!;
          longestWaitMs = Math.max(longestWaitMs, next.getTime() - clock.now().getTime());
          clock.set(next);
        }
      }

      const stored = await row(id);
      expect(stored).toMatchObject({ dead_at: clock.now(), next_attempt_at: null, delivered_at: null, last_error: 'HTTP 503' });
      expect(clock.now().getTime() - T0.getTime()).toBeGreaterThan(71 * HOUR_MS);
      expect(clock.now().getTime() - T0.getTime()).toBeLessThanOrEqual(72 * HOUR_MS);
      expect(longestWaitMs).toBeLessThanOrEqual(HOUR_MS);
      expect(receiver.received).toHaveLength(stored.attempts);

      clock.advance(7 * 24 * HOUR_MS);
      expect(await service.deliverDue()).toEqual({ delivered: 0, retrying: 0, dead: 0, handedBack: 0 });
    },
    DATABASE_TIMEOUT_MS,
  );

  it('gives up without sending an event that is already older than three days', async () => {
    const service = dispatcher(await receiver.listen());
    const id = await enqueue({ type: 'connection.created', userId: 'user-7' }, new Date(T0.getTime() - 73 * HOUR_MS));

    expect((await service.deliverDue()).dead).toBe(1);
    expect(receiver.received).toHaveLength(0);
    expect(await row(id)).toMatchObject({ attempts: 0, dead_at: T0, next_attempt_at: null });
  });

  it('hands an event back unsent, due at once, when the service stops mid-send', async () => {
    const service = dispatcher(await receiver.listen());
    receiver.behaviour = 'hang';
    const id = await enqueue({ type: 'connection.created', userId: 'user-8' });

    const stopping = new AbortController();
    const pass = service.deliverDue(stopping.signal);
    await receiver.waitFor(1);
    stopping.abort();

    expect((await pass).handedBack).toBe(1);
    expect(await row(id)).toMatchObject({ attempts: 0, next_attempt_at: T0, delivered_at: null, dead_at: null });
    expect(await service.deliverDue(stopping.signal)).toEqual({ delivered: 0, retrying: 0, dead: 0, handedBack: 0 });
  });

  it('sends a claimed event again once the lease of a dispatcher that died has run out', async () => {
    const service = dispatcher(await receiver.listen());
    const id = await enqueue({ type: 'connection.created', userId: 'user-9' });
    const repository = new WebhookDeliveryRepository(db.dataSource);

    const leaseUntil = new Date(T0.getTime() + DEFAULT_WEBHOOK_DELIVERY_OPTIONS.leaseMs);
    expect((await repository.claimDue(T0, leaseUntil, 10)).map((e) => e.id)).toEqual([id]);
    expect(await service.deliverDue()).toEqual({ delivered: 0, retrying: 0, dead: 0, handedBack: 0 });

    clock.set(leaseUntil);
    expect((await service.deliverDue()).delivered).toBe(1);
    expect(receiver.received).toHaveLength(1);
  });

  it('sends nothing without WEBHOOK_URL and leaves the events pending', async () => {
    await receiver.listen();
    const service = dispatcher(undefined);
    const id = await enqueue({ type: 'connection.created', userId: 'user-10' });

    expect(service.enabled).toBe(false);
    expect(await service.deliverDue()).toEqual({ delivered: 0, retrying: 0, dead: 0, handedBack: 0 });
    expect(receiver.received).toHaveLength(0);
    expect(await row(id)).toMatchObject({ attempts: 0, next_attempt_at: T0, delivered_at: null, dead_at: null });
    expect(await new WebhookDeliveryRepository(db.dataSource).backlog()).toEqual({ pending: 1, dead: 0, oldestPendingAt: T0 });
  });
});
