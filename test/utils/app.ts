import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { Writable } from 'node:stream';
import { join } from 'node:path';
import type { INestApplication } from '@nestjs/common';
import { createApp } from '../../src/app.factory.js';
import { loadConfig, type AppConfig } from '../../src/config/app-config.js';
import type { Clock } from '../../src/common/clock.js';
import { createTestDatabase, type TestDatabase } from './database.js';

export const TEST_API_KEY = 'test-api-key-0123456789abcdef';

export interface TestApp {
  readonly app: INestApplication;
  readonly config: AppConfig;
  /** e.g. http://127.0.0.1:41234 */
  readonly baseUrl: string;
  /** Every log line written so far (only with `captureLogs`). */
  logs(): string;
  /** The same lines, parsed. */
  logLines(): Record<string, unknown>[];
  close(): Promise<void>;
}

export interface TestAppOptions {
  /** Extra environment variables (they win over the defaults below). */
  readonly env?: Record<string, string>;
  readonly clock?: Clock;
  /** 'postgres' (a fresh database on the test server, the default when one is reachable) or 'pglite' (in memory). */
  readonly driver?: 'postgres' | 'pglite';
  /** Use this database URL instead of creating one (it is not dropped on close). */
  readonly databaseUrl?: string;
  /** Collect the service's log output (at debug level unless LOG_LEVEL is given) for `logs()`. */
  readonly captureLogs?: boolean;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** Apps started by this test file: nestjs-pino keeps one root logger per module registry, built by the first. */
let appsStarted = 0;

/**
 * The whole service, listening on a free local port, on its own database, with the sandbox identity provider
 * (no ATLASSIAN_CLIENT_ID) unless the env says otherwise. Logs are silent unless LOG_LEVEL is passed.
 */
export async function startTestApp(options: TestAppOptions = {}): Promise<TestApp> {
  if (options.captureLogs && appsStarted > 0) {
    throw new Error('captureLogs works only for the first app a test file starts: nestjs-pino builds its logger once per process');
  }
  appsStarted += 1;
  const port = await freePort();
  const dataDir = mkdtempSync(join(tmpdir(), 'ats-test-'));
  const driver = options.driver ?? (process.env.TEST_PG_ADMIN_URL ? 'postgres' : 'pglite');
  let database: TestDatabase | undefined;
  if (!options.databaseUrl && driver === 'postgres') database = await createTestDatabase();
  const env: Record<string, string> = {
    PORT: String(port),
    PUBLIC_URL: `http://127.0.0.1:${port}`,
    API_KEYS: TEST_API_KEY,
    TOKEN_ENCRYPTION_KEYS: `test:${randomBytes(32).toString('base64')}`,
    LOG_LEVEL: options.captureLogs ? 'debug' : 'silent',
    ...options.env,
  };
  const url = options.databaseUrl ?? database?.url;
  if (url) env.DATABASE_URL = url;
  const config = loadConfig(env, { dataDir });
  const captured: string[] = [];
  const logDestination = options.captureLogs
    ? new Writable({
        write(chunk: Buffer, _encoding, done) {
          captured.push(chunk.toString('utf8'));
          done();
        },
      })
    : undefined;
  const app = await createApp({ config, clock: options.clock, logDestination });
  await app.listen(port, '127.0.0.1');
  return {
    app,
    config,
    baseUrl: `http://127.0.0.1:${port}`,
    logs: () => captured.join(''),
    logLines: () =>
      captured
        .join('')
        .split('\n')
        .filter((line) => line !== '')
        .map((line) => JSON.parse(line) as Record<string, unknown>),
    close: async () => {
      await app.close();
      await database?.drop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
