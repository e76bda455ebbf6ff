import { afterEach, describe, expect, it } from '@jest/globals';
import { DataSource } from 'typeorm';
import { MIGRATIONS } from '../../../migrations/index.js';
import { dataSourceOptions } from '../../../src/database/data-source.js';
import { migrationsApplied, revertLastMigration, runMigrations } from '../../../src/database/migrator.js';
import { createTestDatabase, describePostgres, drivers, openMigratedDatabase, type OpenedDatabase } from '../../utils/database.js';

const TABLES = ['accessible_resource_changes', 'accessible_resources', 'connect_tickets', 'connections', 'oauth_states', 'webhook_outbox'];

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

  it('leave the schema exactly as the entities describe it (nothing for migration:generate to add)', async () => {
    db = await openMigratedDatabase(driver);
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
      await Promise.all(replicas.map((r) => (r.isInitialized ? r.destroy() : undefined)));
      await database.drop();
    }
  });
});
