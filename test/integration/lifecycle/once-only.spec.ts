import { afterAll, beforeAll, beforeEach, expect, it } from '@jest/globals';
import { DataSource, type EntityManager } from 'typeorm';
import { loadConfig } from '../../../src/config/app-config.js';
import { dataSourceOptions } from '../../../src/database/data-source.js';
import { ConnectionsRepository } from '../../../src/connection-store/connections.repository.js';
import { LifecycleService } from '../../../src/lifecycle/lifecycle.service.js';
import { OutboxRepository, type OutboxEvent } from '../../../src/webhooks/outbox.repository.js';
import { ManualClock, outboxEvents } from '../../utils/connections.js';
import { describePostgres, openMigratedDatabase, type OpenedDatabase } from '../../utils/database.js';
import { silenceNestLogs } from '../refresh/refresh-stack.js';
import { cacheOff } from '../../utils/connection-cache.js';

const DAY = 86_400_000;
const CONNECTIONS = 300;
const REPLICAS = 4;

silenceNestLogs();

/** An outbox whose writes fail while `failing` is set, as when the database refuses the insert. */
class FlakyOutbox extends OutboxRepository {
  failing = false;

  override enqueue(manager: EntityManager, event: OutboxEvent, at: Date): Promise<string> {
    if (this.failing) return Promise.reject(new Error('outbox write failed'));
    return super.enqueue(manager, event, at);
  }
}

describePostgres('re-consent and scope events across replicas', () => {
  const config = loadConfig(
    { TOKEN_ENCRYPTION_KEYS: `k1:${Buffer.alloc(32, 3).toString('base64')}`, ATLASSIAN_SCOPES: 'read:jira-work write:jira-work' },
    { dataDir: '/nonexistent-lifecycle-test-data' },
  );
  let db: OpenedDatabase;
  let clock: ManualClock;
  const replicas: DataSource[] = [];

  beforeAll(async () => {
    db = await openMigratedDatabase('postgres');
    for (let i = 0; i < REPLICAS; i++) {
      replicas.push(
        await new DataSource(dataSourceOptions({ database: { url: db.url, pgliteDir: '', migrationsRun: false } })).initialize(),
      );
    }
  }, 30_000);
  afterAll(async () => {
    await Promise.all(replicas.map((replica) => replica.destroy()));
    await db?.close();
  }, 30_000);
  beforeEach(async () => {
    await db.dataSource.query('TRUNCATE connections, webhook_outbox CASCADE');
    clock = new ManualClock();
    // Every connection's consent ends within the warning, and every grant lacks write:jira-work.
    await db.dataSource.query(
      `INSERT INTO connections (user_id, atlassian_account_id, status, scopes, missing_scopes, consented_at)
       SELECT 'user-' || n, '712020:' || n, 'active', '{read:jira-work,offline_access,read:me}', '{write:jira-work}', $1::timestamptz - n * interval '1 second'
       FROM generate_series(1, ${CONNECTIONS}) AS n`,
      [new Date(clock.now().getTime() - 360 * DAY)],
    );
  });

  function service(dataSource: DataSource, outbox = new OutboxRepository()): LifecycleService {
    return new LifecycleService(dataSource, new ConnectionsRepository(dataSource, outbox, cacheOff()), config, clock);
  }

  it('sends each event once per connection while every replica checks at once, again and again', async () => {
    const services = replicas.map((replica) => service(replica));
    const reports = await Promise.all(services.flatMap((s) => [s.sendDueEvents(), s.sendDueEvents(), s.sendDueEvents()]));
    expect(reports.reduce((sum, r) => sum + r.reconsentDue, 0)).toBe(CONNECTIONS);
    expect(reports.reduce((sum, r) => sum + r.scopesOutdated, 0)).toBe(CONNECTIONS);

    const events = await outboxEvents(db.dataSource);
    for (const type of ['connection.reconsent_due', 'connection.scopes_outdated']) {
      const users = events.filter((e) => e.type === type).map((e) => e.userId);
      expect(users).toHaveLength(CONNECTIONS);
      expect(new Set(users).size).toBe(CONNECTIONS);
    }
    const due = events.find((e) => e.type === 'connection.reconsent_due' && e.userId === 'user-1')!;
    expect(due.body).toEqual({
      id: expect.any(String),
      type: 'connection.reconsent_due',
      userId: 'user-1',
      at: clock.now().toISOString(),
      atlassianAccountId: '712020:1',
      consentedAt: new Date(clock.now().getTime() - 360 * DAY - 1000).toISOString(),
      consentExpiresAt: new Date(clock.now().getTime() + 5 * DAY - 1000).toISOString(),
    });
    const outdated = events.find((e) => e.type === 'connection.scopes_outdated' && e.userId === 'user-1')!;
    expect(outdated.body).toEqual({
      id: expect.any(String),
      type: 'connection.scopes_outdated',
      userId: 'user-1',
      at: clock.now().toISOString(),
      atlassianAccountId: '712020:1',
      consentedAt: new Date(clock.now().getTime() - 360 * DAY - 1000).toISOString(),
      missingScopes: ['write:jira-work'],
    });

    expect(await Promise.all(services.map((s) => s.sendDueEvents()))).toEqual(services.map(() => ({ reconsentDue: 0, scopesOutdated: 0 })));
  });

  it('marks nothing sent when its event could not be written: the next check sends it', async () => {
    const outbox = new FlakyOutbox();
    const flaky = service(replicas[0], outbox);
    outbox.failing = true;
    await expect(flaky.sendDueEvents()).rejects.toThrow('outbox write failed');
    expect(await outboxEvents(db.dataSource)).toEqual([]);

    outbox.failing = false;
    expect(await flaky.sendDueEvents()).toEqual({ reconsentDue: CONNECTIONS, scopesOutdated: CONNECTIONS });
    expect(await outboxEvents(db.dataSource)).toHaveLength(2 * CONNECTIONS);
  });
});
