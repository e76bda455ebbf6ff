import { describe, expect, it } from '@jest/globals';
import { connectWithRetry, DatabaseUnreachableError } from './connect.js';

const refused = () => Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });

function harness(failures: (() => Error)[]) {
  const warnings: Record<string, unknown>[] = [];
  const sleeps: number[] = [];
  let calls = 0;
  const open = async () => {
    const failure = failures[calls++];
    if (failure) throw failure();
    return 'opened';
  };
  const options = {
    attempts: 4,
    delayMs: 3_000,
    where: 'postgres://app:***@db:5432/tokens',
    logger: { warn: (line: Record<string, unknown>) => warnings.push(line) },
    sleep: async (ms: number) => {
      sleeps.push(ms);
    },
  };
  return { open, options, warnings, sleeps, calls: () => calls };
}

describe('connectWithRetry', () => {
  it('tries again while the server cannot be reached, one line per failed attempt with its reason', async () => {
    const h = harness([refused, refused]);
    expect(await connectWithRetry(h.open, h.options)).toBe('opened');
    expect(h.sleeps).toEqual([3_000, 3_000]);
    expect(h.warnings).toEqual([
      {
        msg: 'The database at postgres://app:***@db:5432/tokens cannot be reached (attempt 1 of 4): connect ECONNREFUSED 127.0.0.1:5432; trying again in 3 s',
        attempt: 1,
        attempts: 4,
        reason: 'connect ECONNREFUSED 127.0.0.1:5432',
      },
      expect.objectContaining({ attempt: 2 }),
    ]);
  });

  it('gives up after the last attempt with what to check', async () => {
    const h = harness([refused, refused, refused, refused]);
    const failed = connectWithRetry(h.open, h.options);
    await expect(failed).rejects.toThrow(DatabaseUnreachableError);
    await expect(failed).rejects.toThrow(
      'The database at postgres://app:***@db:5432/tokens could not be reached in 4 attempts over 9 s (connect ECONNREFUSED 127.0.0.1:5432). ' +
        'Check DATABASE_URL, and that PostgreSQL is running and accepts connections from this machine.',
    );
    expect(h.warnings).toHaveLength(3);
  });

  it('does not retry what waiting cannot fix (a refused password, a database held by another process)', async () => {
    const h = harness([() => Object.assign(new Error('password authentication failed for user "app"'), { code: '28P01' })]);
    await expect(connectWithRetry(h.open, h.options)).rejects.toThrow('password authentication failed');
    expect(h.calls()).toBe(1);
    expect(h.warnings).toEqual([]);
  });
});
