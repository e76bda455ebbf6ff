import { describe, expect, it } from '@jest/globals';
import { StatementBatcher } from './statement-batcher.js';

function deferred<T>() {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

describe('StatementBatcher', () => {
  it('flushes a lone item at once, and batches what arrives while the flushes are busy', async () => {
    const flushes: { items: number[]; done: ReturnType<typeof deferred<number[]>> }[] = [];
    const batcher = new StatementBatcher<number, number>(
      (items) => {
        const done = deferred<number[]>();
        flushes.push({ items, done });
        return done.promise;
      },
      3,
      1,
    );
    const first = batcher.submit(1);
    expect(flushes.map((f) => f.items)).toEqual([[1]]);
    const rest = [2, 3, 4, 5].map((n) => batcher.submit(n));
    expect(flushes).toHaveLength(1);

    flushes[0].done.resolve([10]);
    expect(await first).toBe(10);
    await Promise.resolve();
    expect(flushes.map((f) => f.items)).toEqual([[1], [2, 3, 4]]);
    flushes[1].done.resolve([20, 30, 40]);
    await new Promise((resolve) => setImmediate(resolve));
    expect(flushes.map((f) => f.items)).toEqual([[1], [2, 3, 4], [5]]);
    flushes[2].done.resolve([50]);
    expect(await Promise.all(rest)).toEqual([20, 30, 40, 50]);
  });

  it('runs up to maxFlushes at once and fails every item of a failed flush, and only those', async () => {
    const pending: ReturnType<typeof deferred<string[]>>[] = [];
    const batcher = new StatementBatcher<string, string>(
      () => {
        const done = deferred<string[]>();
        pending.push(done);
        return done.promise;
      },
      10,
      2,
    );
    const a = batcher.submit('a');
    const b = batcher.submit('b');
    const c = batcher.submit('c');
    expect(pending).toHaveLength(2);
    pending[0].reject(new Error('database gone'));
    await expect(a).rejects.toThrow('database gone');
    await new Promise((resolve) => setImmediate(resolve));
    expect(pending).toHaveLength(3);
    pending[1].resolve(['B']);
    pending[2].resolve(['C']);
    await expect(b).resolves.toBe('B');
    await expect(c).resolves.toBe('C');
  });
});
