import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { SignJWT } from 'jose';
import pg from 'pg';
import { Registry } from 'prom-client';
import type { DataSource } from 'typeorm';
import { loadConfig } from '../../../src/config/app-config.js';
import { StatementBatcher } from '../../../src/database/statement-batcher.js';
import { JiraWebhookReceiver } from '../../../src/jira-webhooks/jira-webhook.receiver.js';
import { JiraWebhookMetrics } from '../../../src/jira-webhooks/jira-webhooks.metrics.js';
import { JiraWebhooksRepository, type DeliveryRecord, type RecordedDelivery } from '../../../src/jira-webhooks/jira-webhooks.repository.js';
import { ManualClock, outboxEvents } from '../../utils/connections.js';
import { describePostgres, drivers, openMigratedDatabase, type OpenedDatabase } from '../../utils/database.js';
import { silenceNestLogs } from '../refresh/refresh-stack.js';

silenceNestLogs();

const ACME = 'https://acme.atlassian.net';
const UMBRELLA = 'https://umbrella.atlassian.net';

/** Two users on acme, where Jira's id 7 is alice's and 8 is bob's; alice also on umbrella, where id 7 is hers again. */
async function seed(dataSource: DataSource): Promise<Map<string, string>> {
  await dataSource.query(`TRUNCATE connections, webhook_outbox, jira_webhook_deliveries CASCADE`);
  await dataSource.query(
    `INSERT INTO connections (user_id, atlassian_account_id, status, scopes)
     VALUES ('alice', '712020:alice', 'active', '{read:jira-work,manage:jira-webhook}'), ('bob', '712020:bob', 'active', '{read:jira-work,manage:jira-webhook}')`,
  );
  await dataSource.query(
    `INSERT INTO accessible_resources (connection_id, cloud_id, url, name, first_seen_at)
     SELECT c.id, s.cloud_id, s.url, s.cloud_id, now() FROM connections c
     JOIN (VALUES ('alice', 'acme-cloud', '${ACME}'), ('alice', 'umbrella-cloud', '${UMBRELLA}'), ('bob', 'acme-cloud', '${ACME}'))
       AS s(user_id, cloud_id, url) ON s.user_id = c.user_id`,
  );
  const rows: { key: string; id: string }[] = await dataSource.query(
    `INSERT INTO jira_webhook_registrations (id, connection_id, cloud_id, jira_webhook_id, events, jql_filter, status, created_at, updated_at)
     SELECT gen_random_uuid(), c.id, r.cloud_id, r.jira_webhook_id, '{jira:issue_updated}', 'project = ABC', 'active', now(), now()
     FROM connections c JOIN (VALUES ('alice', 'acme-cloud', 7), ('bob', 'acme-cloud', 8), ('alice', 'umbrella-cloud', 7))
       AS r(user_id, cloud_id, jira_webhook_id) ON r.user_id = c.user_id
     RETURNING cloud_id || '/' || jira_webhook_id AS key, id::text AS id`,
  );
  return new Map(rows.map((r) => [r.key, r.id]));
}

describe.each(drivers)('recording Jira deliveries on %s', (driver) => {
  let db: OpenedDatabase;
  let repository: JiraWebhooksRepository;
  let registrations: Map<string, string>;
  const at = new Date('2026-03-02T09:00:00.000Z');

  beforeAll(async () => {
    db = await openMigratedDatabase(driver);
    repository = new JiraWebhooksRepository(db.dataSource);
  }, 30_000);
  afterAll(() => db?.close());
  beforeEach(async () => {
    registrations = await seed(db.dataSource);
  });

  const delivery = (identifier: string, matchedWebhookIds: number[], siteUrl: string | null, when = at): DeliveryRecord => ({
    identifier,
    at: when,
    event: JSON.stringify({ webhookEvent: 'jira:issue_updated', matchedWebhookIds, issue: { key: identifier } }),
    matchedWebhookIds,
    siteUrl,
  });
  const forwarded = async () =>
    (await outboxEvents(db.dataSource)).map((e) => {
      const event = e.body.event as { issue: { key: string } };
      return `${event.issue.key} ${e.userId} ${e.body.cloudId as string} ${JSON.stringify(e.body.jiraWebhookIds)}`;
    });

  it("forwards a delivery to each connection its ids belong to, on the site it names, with Jira's JSON as received", async () => {
    const outcomes = await repository.recordDeliveries([
      delivery('on-acme', [7, 8, 7], ACME),
      delivery('on-umbrella', [7], UMBRELLA),
      delivery('no-site', [7], null),
      delivery('unknown-ids', [9], ACME),
      delivery('no-ids', [], null),
    ]);
    expect(outcomes).toEqual(['accepted', 'accepted', 'accepted', 'unknown', 'unknown']);
    expect((await forwarded()).sort()).toEqual([
      'no-site alice acme-cloud [7]',
      'no-site alice umbrella-cloud [7]',
      'on-acme alice acme-cloud [7]',
      'on-acme bob acme-cloud [8]',
      'on-umbrella alice umbrella-cloud [7]',
    ]);

    const [row] = await db.dataSource.query(
      `SELECT id::text AS id, type, user_id, body, created_at, next_attempt_at FROM webhook_outbox WHERE user_id = 'bob'`,
    );
    const body = JSON.parse(row.body) as Record<string, unknown>;
    expect(Object.keys(body)).toEqual(['id', 'type', 'userId', 'at', 'cloudId', 'jiraWebhookIds', 'event']);
    expect(body).toEqual({
      id: row.id,
      type: 'jira.event',
      userId: 'bob',
      at: at.toISOString(),
      cloudId: 'acme-cloud',
      jiraWebhookIds: [8],
      event: JSON.parse(delivery('on-acme', [7, 8, 7], ACME).event),
    });
    expect(row.body).toContain(delivery('on-acme', [7, 8, 7], ACME).event);
    expect([row.type, new Date(row.created_at).getTime(), new Date(row.next_attempt_at).getTime()]).toEqual([
      'jira.event',
      at.getTime(),
      at.getTime(),
    ]);
  });

  it('records a batch at once: a repeat within it or of an earlier batch writes nothing, each other delivery its events', async () => {
    expect(await repository.recordDeliveries([delivery('earlier', [7], ACME)])).toEqual(['accepted']);

    const later = new Date(at.getTime() + 1_000);
    const outcomes = await repository.recordDeliveries([
      delivery('first', [7, 8], ACME, later),
      delivery('earlier', [7], ACME, later),
      delivery('first', [7, 8], ACME, later),
      delivery('unknown-ids', [9], ACME, later),
      delivery('second', [7], UMBRELLA, later),
    ]);
    expect(outcomes).toEqual(['accepted', 'duplicate', 'duplicate', 'unknown', 'accepted']);

    expect((await forwarded()).sort()).toEqual([
      'earlier alice acme-cloud [7]',
      'first alice acme-cloud [7]',
      'first bob acme-cloud [8]',
      'second alice umbrella-cloud [7]',
    ]);
    const deliveries: { identifier: string }[] = await db.dataSource.query(`SELECT identifier FROM jira_webhook_deliveries ORDER BY 1`);
    expect(deliveries.map((d) => d.identifier)).toEqual(['earlier', 'first', 'second', 'unknown-ids']);
    const touched: { id: string; last_delivery_at: Date | null }[] = await db.dataSource.query(
      `SELECT id::text AS id, last_delivery_at FROM jira_webhook_registrations`,
    );
    const lastDelivery = new Map(touched.map((r) => [r.id, r.last_delivery_at && new Date(r.last_delivery_at).getTime()]));
    expect(lastDelivery).toEqual(
      new Map([
        [registrations.get('acme-cloud/7'), later.getTime()],
        [registrations.get('acme-cloud/8'), later.getTime()],
        [registrations.get('umbrella-cloud/7'), later.getTime()],
      ]),
    );
  });

  it("finds a delivery's registrations by Jira's webhook id alone, reading a few pages of 10,000 registrations", async () => {
    await db.dataSource.query(
      `INSERT INTO jira_webhook_registrations (id, connection_id, cloud_id, jira_webhook_id, events, jql_filter, status, created_at, updated_at)
       SELECT gen_random_uuid(), c.id, 'site-' || (n % 100), 1000 + n, '{jira:issue_updated}', 'project = ABC', 'active', now(), now()
       FROM connections c CROSS JOIN generate_series(1, 10000) AS n WHERE c.user_id = 'bob'`,
    );
    await db.dataSource.query(`ANALYZE jira_webhook_registrations`);
    const [
      {
        'QUERY PLAN': [plan],
      },
    ]: { 'QUERY PLAN': { Plan: { 'Shared Hit Blocks': number; 'Shared Read Blocks': number } }[] }[] = await db.dataSource.query(
      `EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON)
         SELECT id FROM jira_webhook_registrations WHERE jira_webhook_id = ANY('{7,5000}'::bigint[]) AND status <> 'removed'`,
    );
    // Two descents of a three-level index and their rows; reading the table or the whole index is hundreds.
    expect(plan.Plan['Shared Hit Blocks'] + plan.Plan['Shared Read Blocks']).toBeLessThan(20);
  });
});

/** The repository, with the first batch's write held until the test lets it go, and each batch's identifiers noted. */
class HeldRepository extends JiraWebhooksRepository {
  readonly batches: string[][] = [];
  private open!: () => void;
  private readonly held = new Promise<void>((resolve) => (this.open = resolve));

  override async recordDeliveries(deliveries: readonly DeliveryRecord[]): Promise<RecordedDelivery[]> {
    this.batches.push(deliveries.map((d) => d.identifier));
    if (this.batches.length === 1) await this.held;
    return super.recordDeliveries(deliveries);
  }

  letGo(): void {
    this.open();
  }
}

describePostgres('the Jira webhook receiver under concurrent deliveries', () => {
  const config = loadConfig(
    { ATLASSIAN_CLIENT_ID: 'receiver-test', ATLASSIAN_CLIENT_SECRET: 'receiver-test-secret' },
    { dataDir: '/nonexistent-receiver-test-data' },
  );
  const clock = new ManualClock();
  let db: OpenedDatabase;
  let reader: pg.Pool;
  let jwt: string;

  beforeAll(async () => {
    db = await openMigratedDatabase('postgres');
    reader = new pg.Pool({ connectionString: db.url, max: 4 });
    const now = Math.floor(clock.now().getTime() / 1000);
    jwt = await new SignJWT({ iss: config.atlassian.clientId })
      .setProtectedHeader({ alg: 'HS256' })
      .setIssuedAt(now)
      .setExpirationTime(now + 60)
      .sign(new TextEncoder().encode(config.atlassian.clientSecret));
  }, 30_000);
  afterAll(async () => {
    await reader?.end();
    await db?.close();
  });
  afterEach(() => {
    jest.restoreAllMocks();
  });

  it('answers each delivery only once its event is committed, and forwards each identifier exactly once', async () => {
    await seed(db.dataSource);
    const repository = new HeldRepository(db.dataSource);
    const receiver = new JiraWebhookReceiver(repository, new JiraWebhookMetrics(new Registry(), repository), clock, config);
    const submitted = jest.spyOn(StatementBatcher.prototype, 'submit');
    const body = (identifier: string) =>
      Buffer.from(
        JSON.stringify({
          webhookEvent: 'jira:issue_updated',
          matchedWebhookIds: [7, 8],
          issue: { self: `${ACME}/rest/api/2/issue/1`, key: identifier },
        }),
      );
    const forwarded = async (identifier: string) =>
      (
        await reader.query<{ n: string }>(`SELECT count(*) AS n FROM webhook_outbox WHERE (body::jsonb)->'event'->'issue'->>'key' = $1`, [
          identifier,
        ])
      ).rows.map((r) => Number(r.n))[0];
    /** Each delivery's outcome, with how many of its events were committed when it was answered. */
    const send = async (identifier: string) => {
      const answer = await receiver.receive(`Bearer ${jwt}`, identifier, body(identifier));
      return { identifier, ...answer, committed: await forwarded(identifier) };
    };

    // The first delivery's write is held while 301 more arrive: three of each of 100 identifiers, and the first's retry.
    const first = send('delivery-first');
    const identifiers = Array.from({ length: 100 }, (_, i) => `delivery-${i}`);
    const copies = [...identifiers, ...identifiers.toReversed(), 'delivery-first', ...identifiers];
    const rest = copies.map((identifier) => send(identifier));
    while (submitted.mock.calls.length < copies.length + 1) await new Promise((resolve) => setImmediate(resolve));
    repository.letGo();
    const answers = [await first, ...(await Promise.all(rest))];

    // Repeats of one identifier met in one batch, not only across batches.
    const shared = repository.batches.slice(1).some((batch) => new Set(batch).size < batch.length);
    expect(shared).toBe(true);
    for (const answer of answers) {
      expect(answer.status).toBe(202);
      // alice's and bob's: both committed before the answer, whichever copy carried them.
      expect(answer.committed).toBe(2);
    }
    const byIdentifier = new Map<string, typeof answers>();
    for (const answer of answers) byIdentifier.set(answer.identifier, [...(byIdentifier.get(answer.identifier) ?? []), answer]);
    for (const [identifier, copiesOf] of byIdentifier) {
      expect([identifier, copiesOf.filter((a) => a.outcome === 'accepted').length]).toEqual([identifier, 1]);
      expect([identifier, copiesOf.filter((a) => a.outcome === 'duplicate').length]).toEqual([identifier, copiesOf.length - 1]);
    }
    const events = await outboxEvents(db.dataSource);
    expect(events).toHaveLength(2 * byIdentifier.size);
    expect(new Set(events.map((e) => `${(e.body.event as { issue: { key: string } }).issue.key}:${e.userId}`)).size).toBe(events.length);
  }, 60_000);
});
