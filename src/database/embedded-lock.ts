import { randomUUID } from 'node:crypto';
import { linkSync, mkdirSync, readFileSync, rmdirSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';

/** Who holds the embedded database, as its lock file says. */
export interface EmbeddedLockHolder {
  readonly pid: number;
  /** What the holder is, in words: "the service", "an operator command (npm run cli)". */
  readonly owner: string;
  /** When it took the lock (ISO time). */
  readonly since: string;
  readonly hostname: string;
}

interface LockContent extends EmbeddedLockHolder {
  /** Tells this holder's file from a later one written by the same pid. */
  readonly token: string;
}

export class EmbeddedDatabaseBusyError extends Error {
  constructor(
    readonly directory: string,
    readonly holder: EmbeddedLockHolder,
  ) {
    super(
      `The embedded database under ${directory} is in use by ${holder.owner} (pid ${holder.pid}, since ${holder.since}): ` +
        'stop that first, or set DATABASE_URL to a PostgreSQL server, which any number of processes can share.',
    );
    this.name = 'EmbeddedDatabaseBusyError';
  }
}

/** A takeover that has not finished in this long was abandoned by a process that died in the middle of it. */
const ABANDONED_TAKEOVER_MS = 10_000;
const RETRY_MS = 25;
const MAX_WAIT_MS = 3_000;

/** The locks this process holds, by file: a lock file naming this pid but not listed here was left by an earlier process. */
const held = new Map<string, string>();
process.once('exit', () => {
  for (const [file, token] of held) removeIfOurs(file, token);
});

export function embeddedLockFile(directory: string): string {
  return `${directory}.lock`;
}

/**
 * PGlite opens its directory without any lock, and a second process opening the same directory corrupts or misreads
 * it. Whoever opens the embedded database takes this lock first: a file beside the directory, created atomically,
 * naming its holder. A lock whose holder is no longer running is taken over, by exactly one of those racing for it.
 */
export async function acquireEmbeddedLock(directory: string, owner: string): Promise<EmbeddedLock> {
  const file = embeddedLockFile(directory);
  mkdirSync(dirname(file), { recursive: true });
  const mine: LockContent = { pid: process.pid, owner, since: new Date().toISOString(), hostname: hostname(), token: randomUUID() };
  const deadline = Date.now() + MAX_WAIT_MS;
  for (;;) {
    if (createExclusively(file, JSON.stringify(mine))) {
      held.set(file, mine.token);
      return new EmbeddedLock(file, mine.token);
    }
    const found = readLock(file);
    if (found && isRunning(found.content, file)) throw new EmbeddedDatabaseBusyError(directory, holderOf(found.content));
    if (found && takeOver(file, found.raw)) continue;
    if (Date.now() > deadline) {
      const current = readLock(file)?.content;
      throw new EmbeddedDatabaseBusyError(directory, current ? holderOf(current) : unknownHolder());
    }
    await delay(RETRY_MS);
  }
}

/** The live holder of the embedded database's lock; null when nobody holds it (or its holder has died). */
export function findEmbeddedLockHolder(directory: string): EmbeddedLockHolder | null {
  const file = embeddedLockFile(directory);
  const found = readLock(file);
  return found && isRunning(found.content, file) ? holderOf(found.content) : null;
}

export class EmbeddedLock {
  constructor(
    private readonly file: string,
    private readonly token: string,
  ) {}

  release(): void {
    if (held.get(this.file) !== this.token) return;
    held.delete(this.file);
    removeIfOurs(this.file, this.token);
  }
}

/** Written whole under another name, then linked into place: a reader never sees half a lock file. */
function createExclusively(file: string, content: string): boolean {
  const scratch = `${file}.${randomUUID()}`;
  writeFileSync(scratch, content, { mode: 0o600 });
  try {
    linkSync(scratch, file);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw error;
  } finally {
    unlinkSync(scratch);
  }
}

function readLock(file: string): { raw: string; content: LockContent | null } | null {
  let raw: string;
  try {
    raw = readFileSync(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
  try {
    const content = JSON.parse(raw) as LockContent;
    return { raw, content: Number.isInteger(content.pid) ? content : null };
  } catch {
    return { raw, content: null };
  }
}

function isRunning(content: LockContent | null, file: string): content is LockContent {
  if (!content) return false;
  if (content.pid === process.pid) return held.get(file) === content.token;
  try {
    process.kill(content.pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Removes a stale lock file, if it still says what was judged stale. Under a mutex (a directory, created atomically),
 * so that of two processes that both judged it stale, the second cannot remove the lock the first has just created.
 */
function takeOver(file: string, staleRaw: string): boolean {
  const mutex = `${file}.takeover`;
  try {
    mkdirSync(mutex);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    removeIfAbandoned(mutex);
    return false;
  }
  try {
    if (readLock(file)?.raw === staleRaw) unlinkSync(file);
    return true;
  } finally {
    rmdirSync(mutex);
  }
}

function removeIfAbandoned(mutex: string): void {
  try {
    if (Date.now() - statSync(mutex).mtimeMs > ABANDONED_TAKEOVER_MS) rmdirSync(mutex);
  } catch {
    // Finished (or removed by another waiter) meanwhile.
  }
}

function removeIfOurs(file: string, token: string): void {
  if (readLock(file)?.content?.token === token) unlinkSync(file);
}

function holderOf({ pid, owner, since, hostname: host }: LockContent): EmbeddedLockHolder {
  return { pid, owner, since, hostname: host };
}

function unknownHolder(): EmbeddedLockHolder {
  return { pid: 0, owner: 'another process', since: 'unknown', hostname: '' };
}
