import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { freePort } from '../utils/app.js';

const MAIN = resolve('dist/src/main.js');
const CLI = resolve('dist/src/cli/main.js');
const MIGRATE = resolve('dist/src/database/migrate.js');
// A fresh embedded database on disk, and each command a new Node process: tens of seconds on a busy machine.
const TIMEOUT_MS = 240_000;

interface Finished {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

function run(script: string, args: string[], cwd: string, env: NodeJS.ProcessEnv): Promise<Finished> {
  return new Promise((done) => {
    const child = spawn(process.execPath, [script, ...args], { cwd, env });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('exit', (code) => done({ code, stdout, stderr }));
  });
}

/** `npm start` on the embedded database, and the commands a developer runs in a second terminal: real processes. */
describe('the commands beside `npm start` on the embedded database', () => {
  let workDir: string;
  let service: ChildProcess;
  let serviceExit: Promise<number | null>;
  let env: NodeJS.ProcessEnv;
  let baseUrl: string;

  beforeAll(async () => {
    workDir = mkdtempSync(join(tmpdir(), 'ats-first-hour-'));
    const port = await freePort();
    baseUrl = `http://localhost:${port}`;
    env = { PATH: process.env.PATH, PORT: String(port), LOG_LEVEL: 'warn' };
    service = spawn(process.execPath, [MAIN], { cwd: workDir, env, stdio: 'ignore' });
    serviceExit = new Promise((done) => service.on('exit', (code) => done(code)));
    const deadline = Date.now() + TIMEOUT_MS / 2;
    while (Date.now() < deadline) {
      const ready = await fetch(`${baseUrl}/health/ready`).then(
        (r) => r.status === 200,
        () => false,
      );
      if (ready) return;
      await new Promise((r) => setTimeout(r, 250));
    }
    throw new Error('the service did not become ready');
  }, TIMEOUT_MS);
  afterAll(() => {
    service?.kill('SIGKILL');
    rmSync(workDir, { recursive: true, force: true });
  });

  it(
    'never opens the database twice: commands ask the service, migrations are refused, and both work alone once it stopped',
    async () => {
      const connections = await run(CLI, ['connections'], workDir, env);
      expect(connections).toMatchObject({ code: 0, stderr: '' });
      expect(connections.stdout).toContain('Connections: 0');

      const migrate = await run(MIGRATE, ['run'], workDir, env);
      expect(migrate.code).toBe(1);
      expect(migrate.stderr).toBe(
        `The embedded database under ${join(workDir, 'data', 'pglite')} is in use by the service (pid ${service.pid}, since ${
          /since (\S+)\)/.exec(migrate.stderr)?.[1]
        }): stop that first, or set DATABASE_URL to a PostgreSQL server, which any number of processes can share.\n`,
      );

      service.kill('SIGTERM');
      expect(await serviceExit).toBe(0);

      const alone = await run(CLI, ['connections'], workDir, env);
      expect(alone).toMatchObject({ code: 0, stderr: '' });
      expect(alone.stdout).toContain('Connections: 0');
      expect((await run(MIGRATE, ['run'], workDir, env)).stdout).toBe('No pending migrations.\n');
    },
    TIMEOUT_MS,
  );
});
