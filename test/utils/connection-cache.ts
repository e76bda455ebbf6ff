import type { DataSource } from 'typeorm';
import { SystemClock } from '../../src/common/clock.js';
import type { AppConfig } from '../../src/config/app-config.js';
import { ConnectionCache } from '../../src/connection-store/connection-cache.js';

/**
 * A ConnectionCache that never listens, so never remembers anything: for services built by hand, whose tests read
 * and write the database directly (test/e2e/connection-cache.spec.ts tests the cache itself).
 */
export function cacheOff(): ConnectionCache {
  return new ConnectionCache(
    { database: { pgliteDir: '', migrationsRun: false } } as unknown as AppConfig,
    new SystemClock(),
    {} as DataSource,
  );
}
