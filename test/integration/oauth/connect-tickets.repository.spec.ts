import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { ConnectTicketsRepository } from '../../../src/oauth/connect-tickets.repository.js';
import { describePostgres, drivers, openMigratedDatabase, type OpenedDatabase } from '../../utils/database.js';

const T0 = new Date('2026-03-02T09:00:00.000Z');
const LATER = new Date('2026-03-02T09:05:00.000Z');
const EXPIRY = new Date('2026-03-02T09:10:00.000Z');

describe.each(drivers)('ConnectTicketsRepository on %s', (driver) => {
  let db: OpenedDatabase;
  let tickets: ConnectTicketsRepository;

  beforeEach(async () => {
    db = await openMigratedDatabase(driver);
    tickets = new ConnectTicketsRepository(db.dataSource);
  });
  afterEach(() => db?.close());

  it('redeems a ticket once, before it expires, and remembers that it did', async () => {
    await tickets.insert({ ticketHash: 'h1', userId: 'user-1', createdAt: T0, expiresAt: EXPIRY });
    expect(await tickets.redeem('h1', EXPIRY)).toBeUndefined();
    expect(await tickets.redeem('h1', LATER)).toBe('user-1');
    expect(await tickets.redeem('h1', LATER)).toBeUndefined();
    expect(await tickets.findByHash('h1')).toEqual({ userId: 'user-1', expiresAt: EXPIRY, usedAt: LATER });
    expect(await tickets.findByHash('unknown')).toBeUndefined();
  });

  it('deletes tickets expired before a given time', async () => {
    await tickets.insert({ ticketHash: 'old', userId: 'u', createdAt: T0, expiresAt: EXPIRY });
    await tickets.insert({ ticketHash: 'new', userId: 'u', createdAt: T0, expiresAt: new Date('2026-03-09T09:00:00.000Z') });
    expect(await tickets.deleteExpiredBefore(new Date('2026-03-05T00:00:00.000Z'))).toBe(1);
    expect(await tickets.findByHash('old')).toBeUndefined();
  });
});

describePostgres('ConnectTicketsRepository under concurrent opens', () => {
  it('redeems a ticket for exactly one of many requests arriving together', async () => {
    const db = await openMigratedDatabase('postgres');
    try {
      const tickets = new ConnectTicketsRepository(db.dataSource);
      await tickets.insert({ ticketHash: 'raced', userId: 'user-1', createdAt: T0, expiresAt: EXPIRY });
      const results = await Promise.all(Array.from({ length: 8 }, () => tickets.redeem('raced', LATER)));
      expect(results.filter((r) => r !== undefined)).toEqual(['user-1']);
    } finally {
      await db.close();
    }
  });
});
