import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { acquireEmbeddedLock, EmbeddedDatabaseBusyError, embeddedLockFile, findEmbeddedLockHolder } from './embedded-lock.js';

/** A process that has exited: its pid is free (pids are not reused this quickly). */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', '']);
  await new Promise((done) => child.on('exit', done));
  return child.pid!;
}

describe('the embedded database lock', () => {
  let root: string;
  let directory: string;
  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'ats-lock-'));
    directory = join(root, 'data', 'pglite');
  });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  it('is held by one opener at a time, even within one process, and free again once released', async () => {
    const lock = await acquireEmbeddedLock(directory, 'the service');
    expect(findEmbeddedLockHolder(directory)).toMatchObject({ pid: process.pid, owner: 'the service' });
    const second = acquireEmbeddedLock(directory, 'an operator command');
    await expect(second).rejects.toThrow(EmbeddedDatabaseBusyError);
    await expect(second).rejects.toThrow(
      new RegExp(`^The embedded database under ${directory} is in use by the service \\(pid ${process.pid}, since .+\\)`),
    );
    lock.release();
    expect(existsSync(embeddedLockFile(directory))).toBe(false);
    expect(findEmbeddedLockHolder(directory)).toBeNull();
    (await acquireEmbeddedLock(directory, 'an operator command')).release();
  });

  it('is refused while another live process holds it, and taken over once that process is gone', async () => {
    const holder = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)']);
    try {
      const first = await acquireEmbeddedLock(directory, 'the service');
      // Hand the file over to the other process, as if it had written it.
      const content = JSON.parse(readFileSync(embeddedLockFile(directory), 'utf8')) as Record<string, unknown>;
      first.release();
      writeFileSync(embeddedLockFile(directory), JSON.stringify({ ...content, pid: holder.pid, token: 'theirs' }));
      await expect(acquireEmbeddedLock(directory, 'an operator command')).rejects.toThrow(`pid ${holder.pid}`);
      expect(findEmbeddedLockHolder(directory)?.pid).toBe(holder.pid);
    } finally {
      holder.kill('SIGKILL');
      await new Promise((done) => holder.on('exit', done));
    }
    expect(findEmbeddedLockHolder(directory)).toBeNull();
    const lock = await acquireEmbeddedLock(directory, 'an operator command');
    expect(findEmbeddedLockHolder(directory)).toMatchObject({ pid: process.pid, owner: 'an operator command' });
    lock.release();
  });

  it('takes over a lock left by a process that died, or by an earlier process that had this pid (a restarted container)', async () => {
    const left = { pid: await deadPid(), owner: 'the service', since: new Date().toISOString(), hostname: 'x', token: 'old' };
    const lockFile = embeddedLockFile(directory);
    (await acquireEmbeddedLock(directory, 'setup')).release();
    writeFileSync(lockFile, JSON.stringify(left));
    (await acquireEmbeddedLock(directory, 'the service')).release();

    writeFileSync(lockFile, JSON.stringify({ ...left, pid: process.pid }));
    const lock = await acquireEmbeddedLock(directory, 'the service');
    expect(JSON.parse(readFileSync(lockFile, 'utf8'))).toMatchObject({ pid: process.pid, owner: 'the service' });
    lock.release();
  });

  it('lets exactly one of many openers racing for a stale lock have it', async () => {
    (await acquireEmbeddedLock(directory, 'setup')).release();
    writeFileSync(embeddedLockFile(directory), JSON.stringify({ pid: await deadPid(), owner: 'x', since: '', hostname: '', token: 'old' }));
    // A winner keeps the lock until every racer has answered (its standard input closes), however slowly they start.
    const script = `
      import { acquireEmbeddedLock } from ${JSON.stringify(join(process.cwd(), 'dist/src/database/embedded-lock.js'))};
      acquireEmbeddedLock(process.argv[1], 'racer').then(
        () => { process.stdout.write('won'); process.stdin.resume(); process.stdin.on('end', () => process.exit(0)); },
        (error) => { process.stdout.write(error.name); process.exit(0); });`;
    const racers = Array.from({ length: 6 }, () => spawn(process.execPath, ['--input-type=module', '-e', script, directory]));
    const results = await Promise.all(
      racers.map(
        (racer) =>
          new Promise<string>((done) => {
            let output = '';
            racer.stdout.on('data', (chunk: Buffer) => {
              output += chunk.toString();
              done(output);
            });
          }),
      ),
    );
    for (const racer of racers) racer.stdin.end();
    await Promise.all(racers.map((racer) => new Promise((done) => (racer.exitCode === null ? racer.on('exit', done) : done(null)))));
    expect(results.filter((r) => r === 'won')).toHaveLength(1);
    expect(results.filter((r) => r === 'EmbeddedDatabaseBusyError')).toHaveLength(5);
  });
});
