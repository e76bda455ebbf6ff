import { createServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

export { sleep };

/** A port nothing listens on right now (the kernel picks it; it is released before use). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/**
 * Polls `read` until `done(value)` holds; throws after `timeoutMs` with what was last seen. Every wait in the suite
 * goes through here, so none can hang.
 */
export async function eventually(what, read, done, { timeoutMs, intervalMs = 500 }) {
  const deadline = Date.now() + timeoutMs;
  let last;
  let lastError;
  for (;;) {
    try {
      last = await read();
      lastError = undefined;
      if (done(last)) return last;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() >= deadline) {
      const seen = lastError ? `error: ${lastError.message}` : `last value ${JSON.stringify(last)}`;
      throw new Error(`${what}: not reached within ${Math.round(timeoutMs / 1000)} s (${seen})`);
    }
    await sleep(intervalMs);
  }
}

/** Runs `work` on every item with at most `limit` running at once; answers the results in order. */
export async function mapLimit(items, limit, work) {
  const results = new Array(items.length);
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

export function seconds(ms) {
  return (ms / 1000).toFixed(1);
}

/** The difference of two numeric records (sandbox counters, metric samples), key by key. */
export function delta(after, before) {
  const out = {};
  for (const [key, value] of Object.entries(after)) {
    if (typeof value === 'number') out[key] = value - (before[key] ?? 0);
  }
  return out;
}
