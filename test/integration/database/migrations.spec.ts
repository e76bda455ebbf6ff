import { afterEach, describe, expect, it } from '@jest/globals';
import { DataSource } from 'typeorm';
import { MIGRATIONS } from '../../../migrations/index.js';
import { dataSourceOptions } from '../../../src/database/data-source.js';
import { ENTITIES } from '../../../src/entities.js';
import { migrationsApplied, revertLastMigration, runMigrations } from '../../../src/database/migrator.js';
import { createTestDatabase, describePostgres, drivers, openMigratedDatabase, type OpenedDatabase } from '../../utils/database.js';

const TABLES = [
  'accessible_resource_changes',
  'accessible_resources',
  'atlassian_rate_limit_pauses',
  'connect_tickets',
  'connections',
  'jira_webhook_deliveries',
  'jira_webhook_registrations',
  'jira_webhook_subscriptions',
  'oauth_states',
  'webhook_outbox',
];

async function tables(dataSource: DataSource): Promise<string[]> {
  const rows: { table_name: string }[] = await dataSource.query(
    `SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' AND table_name <> 'migrations' ORDER BY 1`,
  );
  return rows.map((r) => r.table_name);
}

describe.each(drivers)('migrations on %s', (driver) => {
  let db: OpenedDatabase;
  afterEach(() => db?.close());

  it('go up on an empty database, down to nothing, and up again', async () => {
    db = await openMigratedDatabase(driver, { migrate: false });
    expect(await migrationsApplied(db.dataSource)).toBe(false);

    const first = await runMigrations(db.dataSource);
    expect(first.applied).toHaveLength(MIGRATIONS.length);
    expect(await tables(db.dataSource)).toEqual(TABLES);
    expect(await migrationsApplied(db.dataSource)).toBe(true);

    for (let i = 0; i < MIGRATIONS.length; i++) await revertLastMigration(db.dataSource);
    expect(await tables(db.dataSource)).toEqual([]);
    expect(await migrationsApplied(db.dataSource)).toBe(false);

    await runMigrations(db.dataSource);
    expect(await tables(db.dataSource)).toEqual(TABLES);
    expect((await runMigrations(db.dataSource)).applied).toEqual([]);
  });

  it("fill each connection's consented_at from the best evidence of its latest consent", async () => {
    db = await openMigratedDatabase(driver);
    // Back to just before ConnectionLifecycle (and whatever came after it), with rows as they were then.
    const applied = async () => (await db.dataSource.query<{ name: string }[]>(`SELECT name FROM migrations`)).map((r) => r.name);
    while ((await applied()).includes('ConnectionLifecycle1795761000000')) await revertLastMigration(db.dataSource);
    const at = (day: number) => new Date(Date.UTC(2026, 0, day));
    const connections: [userId: string, createdAt: Date][] = [
      ['reconnected', at(1)],
      ['signed-in-lately', at(1)],
      ['no-evidence', at(1)],
      ['came-back', at(10)],
    ];
    for (const [userId, createdAt] of connections) {
      await db.dataSource.query(
        `INSERT INTO connections (user_id, atlassian_account_id, status, created_at, updated_at) VALUES ($1, 'acc', 'active', $2, $2)`,
        [userId, createdAt],
      );
    }
    const created = (userId: string, day: number) =>
      db.dataSource.query(
        `INSERT INTO webhook_outbox (id, type, user_id, body, created_at) VALUES (gen_random_uuid(), 'connection.created', $1, '{}', $2)`,
        [userId, at(day)],
      );
    // Reconnected twice: the latest connection.created is the current consent.
    await created('reconnected', 1);
    await created('reconnected', 20);
    await created('reconnected', 5);
    await db.dataSource.query(
      `INSERT INTO webhook_outbox (id, type, user_id, body, created_at) VALUES (gen_random_uuid(), 'connection.deleted', 'reconnected', '{}', $1)`,
      [at(25)],
    );
    // Its outbox events gone, but a recent sign-in that ended connected.
    await db.dataSource.query(
      `INSERT INTO oauth_states (state_hash, user_id, browser_hash, redirect_uri, created_at, expires_at, consumed_at, outcome)
       VALUES ('h1', 'signed-in-lately', 'b', 'r', $1, $1, $1, 'connected'), ('h2', 'signed-in-lately', 'b', 'r', $2, $2, $2, 'access_denied')`,
      [at(15), at(18)],
    );
    // Events from before the row was created belong to an earlier connection of the same userId.
    await created('came-back', 2);

    await runMigrations(db.dataSource);
    const rows: { user_id: string; consented_at: Date }[] = await db.dataSource.query(
      `SELECT user_id, consented_at FROM connections ORDER BY user_id`,
    );
    expect(Object.fromEntries(rows.map((r) => [r.user_id, r.consented_at]))).toEqual({
      'came-back': at(10),
      'no-evidence': at(1),
      reconnected: at(20),
      'signed-in-lately': at(15),
    });
  });

  it('leave the schema exactly as the entities describe it (nothing for migration:generate to add)', async () => {
    db = await openMigratedDatabase(driver, { entities: ENTITIES });
    // Every table the migrations create is described by an entity the data source found.
    const tables: { table_name: string }[] = await db.dataSource.query(
      `SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' AND table_name <> 'migrations' ORDER BY table_name`,
    );
    expect(db.dataSource.entityMetadatas.map((entity) => entity.tableName).sort()).toEqual(tables.map((t) => t.table_name));
    const pending = await db.dataSource.driver.createSchemaBuilder().log();
    expect(pending.upQueries.map((q) => q.query)).toEqual([]);
  });
});

describePostgres('migrations started by several replicas at once', () => {
  it('are applied exactly once while the others wait for the lock', async () => {
    const database = await createTestDatabase();
    const replicas = Array.from(
      { length: 3 },
      () => new DataSource(dataSourceOptions({ database: { url: database.url, pgliteDir: '', migrationsRun: false } })),
    );
    try {
      await Promise.all(replicas.map((r) => r.initialize()));
      const reports = await Promise.all(replicas.map((r) => runMigrations(r)));
      const appliedCounts = reports.map((r) => r.applied.length).sort();
      expect(appliedCounts).toEqual([0, 0, MIGRATIONS.length]);
      const recorded: { count: string }[] = await replicas[0].query('SELECT count(*)::text AS count FROM migrations');
      expect(Number(recorded[0].count)).toBe(MIGRATIONS.length);
    } finally {
      await Promise.all(replicas.map((r) => (r.isInitialized ? r.destroy() : Promise.resolve())));
      await database.drop();
    }
  });
});
