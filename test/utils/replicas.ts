import { randomBytes } from 'node:crypto';
import type { Clock } from '../../src/common/clock.js';
import { startTestApp, type TestApp } from './app.js';
import { createTestDatabase, type TestDatabase } from './database.js';

export interface Replicas {
  readonly first: TestApp;
  readonly second: TestApp;
  /** The sandbox's record of the calls to Atlassian's API, from either replica. */
  apiCalls(): Promise<{ path: string; status: number }[]>;
  close(): Promise<void>;
}

/**
 * Two replicas of the service on one new database, with one encryption key and one Atlassian (the first one's
 * sandbox), as deployed behind a balancer.
 */
export async function startReplicas(clock: Clock): Promise<Replicas> {
  const database: TestDatabase = await createTestDatabase();
  const shared = { TOKEN_ENCRYPTION_KEYS: `shared:${randomBytes(32).toString('base64')}` };
  const first = await startTestApp({ clock, databaseUrl: database.url, env: shared });
  const atlassian = `${first.baseUrl}/sandbox`;
  const second = await startTestApp({
    clock,
    databaseUrl: database.url,
    env: { ...shared, ATLASSIAN_AUTH_URL: atlassian, ATLASSIAN_API_URL: atlassian },
  });
  return {
    first,
    second,
    async apiCalls() {
      const answer = await fetch(`${first.baseUrl}/sandbox/_control/api-calls`);
      return ((await answer.json()) as { calls: { path: string; status: number }[] }).calls;
    },
    async close() {
      await second.close();
      await first.close();
      await database.drop();
    },
  };
}
