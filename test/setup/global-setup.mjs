// Checks once per test run whether a PostgreSQL server is reachable, and names this run so the databases
// it creates (one per test file, see test/utils/database.ts) never collide with another run's.
import pg from 'pg';

export default async function globalSetup(globalConfig) {
  const adminUrl = process.env.TEST_PG_URL || 'postgres://postgres@127.0.0.1:5432/postgres';
  process.env.TEST_RUN_ID = `ats_test_${Date.now().toString(36)}_${process.pid}`;
  // The unit project needs no database (npm run test:unit): no probe, no waiting for a server that is not there.
  if (globalConfig.selectProjects?.length === 1 && globalConfig.selectProjects[0] === 'unit') {
    process.env.TEST_PG_ADMIN_URL = '';
    return;
  }
  const client = new pg.Client({ connectionString: adminUrl, connectionTimeoutMillis: 3_000 });
  try {
    await client.connect();
    await client.query('SELECT 1');
    process.env.TEST_PG_ADMIN_URL = adminUrl;
  } catch (error) {
    if (process.env.CI) {
      throw new Error(`PostgreSQL must be reachable for the tests (TEST_PG_URL, default ${redact(adminUrl)}): ${error.message}`, {
        cause: error,
      });
    }
    process.env.TEST_PG_ADMIN_URL = '';
    console.warn(
      `\n[tests] No PostgreSQL at ${redact(adminUrl)} (${error.message}). ` +
        'Tests that need a real server are SKIPPED; set TEST_PG_URL to run them.\n',
    );
  } finally {
    await client.end().catch(() => undefined);
  }
}

function redact(url) {
  return url.replace(/\/\/([^:@/]+):[^@/]*@/, '//$1:***@');
}
