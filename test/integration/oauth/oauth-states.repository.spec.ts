import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { OAuthStatesRepository } from '../../../src/oauth/oauth-states.repository.js';
import { describePostgres, drivers, openMigratedDatabase, type OpenedDatabase } from '../../utils/database.js';

const T0 = new Date('2026-03-02T09:00:00.000Z');
const LATER = new Date('2026-03-02T09:05:00.000Z');
const EXPIRY = new Date('2026-03-02T09:10:00.000Z');
const CALLBACK = 'https://tokens.example.com/auth/atlassian/callback';

function newState(stateHash: string, userId = 'user-1') {
  return { stateHash, userId, browserHash: 'browser-hash', redirectUri: CALLBACK, createdAt: T0, expiresAt: EXPIRY };
}

describe.each(drivers)('OAuthStatesRepository on %s', (driver) => {
  let db: OpenedDatabase;
  let states: OAuthStatesRepository;

  beforeEach(async () => {
    db = await openMigratedDatabase(driver);
    states = new OAuthStatesRepository(db.dataSource);
  });
  afterEach(() => db?.close());

  it('consumes a state once, for its browser, before it expires', async () => {
    await states.insert(newState('h1'));
    expect(await states.consume('h1', 'other-browser', LATER)).toBeUndefined();
    expect(await states.consume('h1', 'browser-hash', EXPIRY)).toBeUndefined();
    const consumed = await states.consume('h1', 'browser-hash', LATER);
    expect(consumed).toEqual({ id: expect.any(String), userId: 'user-1', redirectUri: CALLBACK, createdAt: T0 });
    expect(await states.consume('h1', 'browser-hash', LATER)).toBeUndefined();
    expect(await states.findByHash('h1')).toEqual({
      id: consumed!.id,
      userId: 'user-1',
      browserHash: 'browser-hash',
      redirectUri: CALLBACK,
      createdAt: T0,
      expiresAt: EXPIRY,
      consumedAt: LATER,
      outcome: null,
    });
  });

  it('records the outcome and knows nothing of unknown states', async () => {
    await states.insert(newState('h2'));
    const consumed = await states.consume('h2', 'browser-hash', LATER);
    await states.recordOutcome(consumed!.id, 'invalid_grant');
    expect((await states.findByHash('h2'))?.outcome).toBe('invalid_grant');
    expect(await states.findByHash('unknown')).toBeUndefined();
  });

  it('deletes states expired before a given time', async () => {
    await states.insert(newState('old'));
    await states.insert({ ...newState('new'), expiresAt: new Date('2026-03-09T09:00:00.000Z') });
    expect(await states.deleteExpiredBefore(new Date('2026-03-05T00:00:00.000Z'))).toBe(1);
    expect(await states.findByHash('old')).toBeUndefined();
    expect(await states.findByHash('new')).toBeDefined();
  });
});

describePostgres('OAuthStatesRepository under concurrent callbacks', () => {
  it('gives a state to exactly one of many callbacks arriving together', async () => {
    const db = await openMigratedDatabase('postgres');
    try {
      const states = new OAuthStatesRepository(db.dataSource);
      await states.insert(newState('raced'));
      const results = await Promise.all(Array.from({ length: 8 }, () => states.consume('raced', 'browser-hash', LATER)));
      expect(results.filter((r) => r !== undefined)).toHaveLength(1);
    } finally {
      await db.close();
    }
  });
});
