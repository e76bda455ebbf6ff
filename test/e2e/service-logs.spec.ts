import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { freePort } from '../utils/app.js';
import { createTestDatabase, describePostgres, type TestDatabase } from '../utils/database.js';

const MAIN = resolve('dist/src/main.js');
const NEST_START_UP = ['NestFactory', 'InstanceLoader', 'RoutesResolver', 'RouterExplorer', 'NestApplication'];

/** The built service's own output, as a log collector reads it (not a terminal: JSON lines). */
describePostgres('the service log', () => {
  let database: TestDatabase;
  let workDir: string;

  beforeAll(async () => {
    database = await createTestDatabase();
    workDir = mkdtempSync(join(tmpdir(), 'ats-logs-'));
  });
  afterAll(async () => {
    await database?.drop();
    rmSync(workDir, { recursive: true, force: true });
  });

  function start(env: Record<string, string>) {
    const child = spawn(process.execPath, [MAIN], {
      cwd: workDir,
      env: {
        PATH: process.env.PATH,
        API_KEYS: 'logs-test-key-0123456789',
        TOKEN_ENCRYPTION_KEYS: `k1:${randomBytes(32).toString('base64')}`,
        ...env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    const exited = new Promise<number | null>((done) => child.on('exit', (code) => done(code)));
    const lines = () =>
      stdout
        .split('\n')
        .filter((line) => line !== '')
        .map((line) => JSON.parse(line) as Record<string, unknown>);
    return { child, exited, lines };
  }

  it('says at info what a person needs at start, keeps Nest’s start-up lines at debug, and says one line on SIGTERM', async () => {
    const port = await freePort();
    const service = start({ PORT: String(port), DATABASE_URL: database.url });
    const deadline = Date.now() + 60_000;
    while (!service.lines().some((l) => String(l.msg).startsWith('Listening on port'))) {
      if (Date.now() > deadline) throw new Error('the service did not start');
      await new Promise((r) => setTimeout(r, 100));
    }
    const started = service.lines();
    expect(started.filter((l) => NEST_START_UP.includes(String(l.context)))).toEqual([]);
    expect(started.find((l) => String(l.msg).startsWith('Listening on port'))).toMatchObject({ level: 30, highlight: true });
    expect(started.find((l) => String(l.msg).startsWith('SANDBOX MODE'))).toMatchObject({ level: 40, highlight: true });
    expect(started.length).toBeLessThanOrEqual(8);

    service.child.kill('SIGTERM');
    expect(await service.exited).toBe(0);
    const stopping = service.lines().slice(started.length);
    expect(stopping).toEqual([
      expect.objectContaining({ level: 30, context: 'Main', msg: expect.stringMatching(/^Stopped on SIGTERM in \d+ ms$/) }),
    ]);
  }, 90_000);

  it('logs each failed attempt to reach the database as a JSON line with its reason, as it happens', async () => {
    const closed = `postgres://postgres:pw-SECRET@127.0.0.1:${await freePort()}/nothing`;
    const service = start({ PORT: String(await freePort()), DATABASE_URL: closed });
    try {
      const deadline = Date.now() + 30_000;
      while (service.lines().filter((l) => l.context === 'Database').length < 2) {
        if (Date.now() > deadline) throw new Error('no retry lines');
        await new Promise((r) => setTimeout(r, 100));
      }
      const [first, second] = service.lines();
      expect(first).toMatchObject({
        level: 40,
        context: 'Database',
        attempt: 1,
        attempts: 20,
        reason: expect.stringContaining('ECONNREFUSED'),
      });
      expect(second).toMatchObject({ attempt: 2 });
      expect(JSON.stringify(service.lines())).not.toContain('pw-SECRET');
    } finally {
      service.child.kill('SIGKILL');
      await service.exited;
    }
  }, 60_000);
});
