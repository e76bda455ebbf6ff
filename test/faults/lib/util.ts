import { createServer, type AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

export { sleep };

/** How long `eventually` polls, and how often. */
export interface PollOptions {
  timeoutMs: number;
  intervalMs?: number;
}

/** The numeric fields of a record, as `delta` answers them. */
export type Numbers<T> = { [K in keyof T as T[K] extends number ? K : never]: number };

/** What a thrown value says: an Error's message, anything else as text. */
export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** A port nothing listens on right now (the kernel picks it; it is released before use). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/**
 * Polls `read` until `done(value)` holds; throws after `timeoutMs` with what was last seen. Every wait in the suite
 * goes through here, so none can hang.
 */
export async function eventually<T>(
  what: string,
  read: () => Promise<T> | T,
  done: (value: T) => boolean,
  { timeoutMs, intervalMs = 500 }: PollOptions,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: T | undefined;
  let lastError: unknown;
  for (;;) {
    try {
      last = await read();
      lastError = undefined;
      if (done(last)) return last;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() >= deadline) {
      const seen = lastError ? `error: ${errorMessage(lastError)}` : `last value ${JSON.stringify(last)}`;
      throw new Error(`${what}: not reached within ${Math.round(timeoutMs / 1000)} s (${seen})`);
    }
    await sleep(intervalMs);
  }
}

/** Runs `work` on every item with at most `limit` running at once; answers the results in order. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, work: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await work(items[index], index);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

export function seconds(ms: number): string {
  return (ms / 1000).toFixed(1);
}

/** The difference of two numeric records (sandbox counters, metric samples), key by key. */
export function delta<T extends object>(after: T, before: T): Numbers<T> {
  const previous = before as Record<string, unknown>;
  const out: Record<string, number> = {};
  for (const [key, value] of Object.entries(after as Record<string, unknown>)) {
    if (typeof value === 'number') out[key] = value - ((previous[key] as number | undefined) ?? 0);
  }
  return out as Numbers<T>;
}
