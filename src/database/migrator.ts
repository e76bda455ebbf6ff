import type { DataSource } from 'typeorm';

/** Arbitrary but fixed: every replica of this service agrees on it, nothing else in the database uses it. */
export const MIGRATION_LOCK_KEY = 7_240_318_112;

export interface MigrationReport {
  readonly applied: readonly string[];
}

/**
 * Runs pending migrations while holding a Postgres advisory lock, so replicas that start together take turns:
 * the first applies them, the others wait, then find nothing left to do.
 */
export async function runMigrations(dataSource: DataSource): Promise<MigrationReport> {
  return withMigrationLock(dataSource, async () => {
    const applied = await dataSource.runMigrations({ transaction: 'each' });
    return { applied: applied.map((m) => m.name) };
  });
}

export async function revertLastMigration(dataSource: DataSource): Promise<void> {
  await withMigrationLock(dataSource, () => dataSource.undoLastMigration({ transaction: 'each' }));
}

/** True when every migration the code knows has been applied. */
export async function migrationsApplied(dataSource: DataSource): Promise<boolean> {
  return !(await dataSource.showMigrations());
}

async function withMigrationLock<T>(dataSource: DataSource, work: () => Promise<T>): Promise<T> {
  // The embedded database belongs to one process (PGlite opens its folder alone): there is nobody to wait for.
  if (!(dataSource.options as { url?: string }).url) return work();
  const runner = dataSource.createQueryRunner();
  try {
    await runner.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK_KEY]);
    return await work();
  } finally {
    await runner.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY]).catch(() => undefined);
    await runner.release();
  }
}
