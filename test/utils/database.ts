import { randomBytes } from 'node:crypto';
import { describe } from '@jest/globals';
import pg from 'pg';
import { DataSource, type DataSourceOptions } from 'typeorm';
import { dataSourceOptions } from '../../src/database/data-source.js';
import { runMigrations } from '../../src/database/migrator.js';

export type Driver = 'postgres' | 'pglite';

/** Set by the global setup when a PostgreSQL server answered; empty when the tests that need one are skipped. */
export const postgresAvailable = Boolean(process.env.TEST_PG_ADMIN_URL);

/** `describe` for suites that need the real server: skipped, with the reason in the name, when there is none. */
export const describePostgres: typeof describe = postgresAvailable
  ? describe
  : (((name: string, fn: () => void) => describe.skip(`${name} [skipped: no PostgreSQL server]`, fn)) as typeof describe);

/** The drivers a repository test runs on: both when a server is reachable, the embedded one always. */
export const drivers: Driver[] = postgresAvailable ? ['postgres', 'pglite'] : ['pglite'];

export interface TestDatabase {
  readonly url: string;
  drop(): Promise<void>;
}

/** A new, empty database on the test server, named after this run so teardown can always find it. */
export async function createTestDatabase(): Promise<TestDatabase> {
  const adminUrl = process.env.TEST_PG_ADMIN_URL;
  if (!adminUrl) throw new Error('No PostgreSQL server for this test run');
  const name = `${process.env.TEST_RUN_ID}_${randomBytes(4).toString('hex')}`;
  await withAdmin(adminUrl, (client) => client.query(`CREATE DATABASE "${name}"`));
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    drop: async () => {
      await withAdmin(adminUrl, (client) => client.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`));
    },
  };
}

async function withAdmin<T>(adminUrl: string, work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

export interface OpenedDatabase {
  readonly dataSource: DataSource;
  /** The server database's URL (postgres driver only). */
  readonly url?: string;
  close(): Promise<void>;
}

/** A migrated database on the given driver: a fresh server database, or an in-memory PGlite. */
export async function openMigratedDatabase(
  driver: Driver,
  options: { migrate?: boolean; entities?: DataSourceOptions['entities'] } = {},
): Promise<OpenedDatabase> {
  const database = driver === 'postgres' ? await createTestDatabase() : undefined;
  const dataSource = new DataSource({
    ...dataSourceOptions({ database: { url: database?.url, pgliteDir: '', migrationsRun: false } }),
    ...(options.entities ? { entities: options.entities } : {}),
  });
  await dataSource.initialize();
  if (options.migrate !== false) await runMigrations(dataSource);
  return {
    dataSource,
    url: database?.url,
    close: async () => {
      await dataSource.destroy();
      await database?.drop();
    },
  };
}
