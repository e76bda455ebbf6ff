import type { DataSourceOptions } from 'typeorm';
import { MIGRATIONS } from '../../migrations/index.js';
import type { AppConfig } from '../config/app-config.js';
import { createPGlitePoolClass } from './pglite-pool.js';

/** Who holds the embedded database, as a refused second opener is told. */
export const EMBEDDED_OWNERS = {
  service: 'the service',
  command: 'an operator command (npm run cli)',
  migrations: 'a migration command (npm run migration:run or migration:revert)',
} as const;

/**
 * The one data-source definition, used by the Nest app, the migration commands and the tests. It lists no entities:
 * every statement is a repository's own SQL (src/entities.ts lists them for the migration generator).
 * With a DATABASE_URL it talks to a Postgres server through `pg`; without one it runs on embedded PGlite, which one
 * process at a time may open: `embeddedOwner` says who this one is when another is refused.
 */
export function dataSourceOptions(config: Pick<AppConfig, 'database'>, embeddedOwner = 'another process'): DataSourceOptions {
  const common = {
    type: 'postgres' as const,
    migrations: MIGRATIONS,
    migrationsTableName: 'migrations',
    synchronize: false,
    migrationsRun: false,
    logging: false,
    // gen_random_uuid() is built into Postgres 13+; PGlite has no uuid-ossp to install.
    installExtensions: false,
  };
  if (config.database.url) {
    return {
      ...common,
      url: config.database.url,
      // Fail fast instead of queueing forever while the server is unreachable, so readiness can say so.
      connectTimeoutMS: 5_000,
      extra: { max: 20, idleTimeoutMillis: 30_000 },
    };
  }
  return {
    ...common,
    driver: { Pool: createPGlitePoolClass(config.database.pgliteDir, embeddedOwner) },
  };
}

export function isEmbedded(config: Pick<AppConfig, 'database'>): boolean {
  return !config.database.url;
}
