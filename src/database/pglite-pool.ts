import { EventEmitter } from 'node:events';
import { mkdirSync } from 'node:fs';
import { PGlite } from '@electric-sql/pglite';
import { acquireEmbeddedLock, type EmbeddedLock } from './embedded-lock.js';

type Release = (error?: unknown) => void;
type ConnectCallback = (error: unknown, client: PGliteClient | null, release: Release) => void;
type QueryCallback = (error: unknown, result: unknown) => void;

/**
 * A `pg`-compatible pool over one embedded PGlite database, for TypeORM's postgres driver.
 *
 * PGlite is a single session, so a pool that handed the same session to two query runners would let one
 * request's statements run inside another's transaction (and be rolled back with it). This pool behaves like
 * `pg.Pool` with `max: 1`: `connect` waits until the previous holder released, so every transaction runs alone.
 * A database on disk is opened only under its lock (`owner` names this process to one that is refused), and the lock
 * is released when the pool ends.
 */
export function createPGlitePoolClass(dataDir: string | undefined, owner: string) {
  let database: Promise<PGlite> | null = null;
  let lock: EmbeddedLock | null = null;
  const openOnDisk = async (directory: string): Promise<PGlite> => {
    lock = await acquireEmbeddedLock(directory, owner);
    try {
      mkdirSync(directory, { recursive: true });
      return await PGlite.create({ dataDir: directory });
    } catch (error) {
      lock.release();
      throw error;
    }
  };
  const open = (): Promise<PGlite> => {
    database ??= dataDir ? openOnDisk(dataDir) : PGlite.create({});
    return database;
  };

  return class PGlitePool extends EventEmitter {
    private queue: Promise<void> = Promise.resolve();

    constructor(_options?: unknown) {
      super();
    }

    connect(callback: ConnectCallback): void {
      let release!: Release;
      const released = new Promise<void>((resolve) => {
        release = () => resolve();
      });
      const previous = this.queue;
      this.queue = previous.then(() => released);
      previous
        .then(open)
        .then((db) => callback(null, new PGliteClient(db), release))
        .catch((error: unknown) => {
          release();
          callback(error, null, release);
        });
    }

    async query(sql: string, params?: unknown[] | QueryCallback, callback?: QueryCallback): Promise<unknown> {
      return new Promise((resolve, reject) => {
        this.connect((error, client, release) => {
          if (error || !client) {
            reject(error instanceof Error ? error : new Error('PGlite gave no client', { cause: error }));
            return;
          }
          client.query(sql, params, callback).then(resolve, reject).finally(release);
        });
      });
    }

    end(callback?: (error?: unknown) => void): void {
      const closing = database ? database.then((db) => db.close()) : Promise.resolve();
      database = null;
      const held = lock;
      lock = null;
      closing
        .finally(() => held?.release())
        .then(
          () => callback?.(),
          (error: unknown) => callback?.(error),
        );
    }
  };
}

class PGliteClient extends EventEmitter {
  constructor(private readonly db: PGlite) {
    super();
  }

  async query(sql: string, params?: unknown[] | QueryCallback, callback?: QueryCallback): Promise<unknown> {
    const cb = typeof params === 'function' ? params : callback;
    const values = Array.isArray(params) ? params : undefined;
    try {
      // Without parameters the text may hold several statements (migrations do): run them all, answer the last.
      const raw =
        values && values.length > 0
          ? await this.db.query(sql, values)
          : await this.db.exec(sql).then((results) => results[results.length - 1] ?? { rows: [], fields: [] });
      // Answer in node-postgres' shape, which TypeORM reads (UPDATE/DELETE come back as [rows, rowCount]).
      const result = {
        rows: raw.rows,
        fields: raw.fields,
        rowCount: raw.affectedRows ?? raw.rows.length,
        command: /^\s*(\w+)/.exec(sql)?.[1]?.toUpperCase(),
      };
      cb?.(null, result);
      return result;
    } catch (error) {
      cb?.(error, null);
      throw error;
    }
  }
}
