import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { ConnectionsRepository } from '../../../src/connection-store/connections.repository.js';
import { OutboxRepository } from '../../../src/webhooks/outbox.repository.js';
import { drivers, openMigratedDatabase, type OpenedDatabase } from '../../utils/database.js';
import { cacheOff } from '../../utils/connection-cache.js';

describe.each(drivers)('ConnectionsRepository on %s', (driver) => {
  let db: OpenedDatabase;
  let repository: ConnectionsRepository;

  beforeAll(async () => {
    db = await openMigratedDatabase(driver);
    repository = new ConnectionsRepository(db.dataSource, new OutboxRepository(), cacheOff());
  }, 30_000);
  afterAll(() => db?.close());
  beforeEach(() => db.dataSource.query(`TRUNCATE connections, webhook_outbox CASCADE`));

  async function insert(userId: string, scopes: string[], missing: string[] = []): Promise<void> {
    await db.dataSource.query(
      `INSERT INTO connections (user_id, atlassian_account_id, status, scopes, missing_scopes) VALUES ($1, 'acc', 'active', $2, $3)`,
      [userId, scopes, missing],
    );
  }

  async function consented(userId: string, at: Date, fields: { status?: string; missing?: string[] } = {}): Promise<string> {
    const rows: { id: string }[] = await db.dataSource.query(
      `INSERT INTO connections (user_id, atlassian_account_id, status, consented_at, missing_scopes)
       VALUES ($1, $2, $3, $4, $5) RETURNING id`,
      [userId, `712020:${userId}`, fields.status ?? 'active', at, fields.missing ?? []],
    );
    return rows[0].id;
  }

  const T0 = new Date('2025-03-02T09:00:00.000Z');
  const days = (n: number) => new Date(T0.getTime() + n * 86_400_000);

  describe('reconsent_due, once per consent', () => {
    it('marks the connections consented before the bound, oldest first, up to the limit, and answers them', async () => {
      await consented('oldest', days(0));
      await consented('older', days(1));
      await consented('at-bound', days(2));
      await consented('young', days(3));
      await consented('gone', days(0), { status: 'reauth_required' });
      await consented('failing', days(1), { status: 'refresh_failing' });
      const manager = db.dataSource.manager;

      const first = await repository.markReconsentDue(manager, days(2), 2);
      expect(first).toEqual([
        { userId: 'oldest', atlassianAccountId: '712020:oldest', consentedAt: days(0) },
        expect.objectContaining({ consentedAt: days(1) }),
      ]);
      const rest = await repository.markReconsentDue(manager, days(2), 10);
      expect([...first, ...rest].map((due) => due.userId).sort()).toEqual(['failing', 'older', 'oldest']);
      expect(await repository.markReconsentDue(manager, days(2), 10)).toEqual([]);
    });

    it('marks a connection again after a new consent', async () => {
      const id = await consented('reconnects', days(0));
      const manager = db.dataSource.manager;
      expect(await repository.markReconsentDue(manager, days(1), 10)).toHaveLength(1);
      await db.dataSource.query(`UPDATE connections SET consented_at = $2 WHERE id = $1`, [id, days(300)]);
      expect(await repository.markReconsentDue(manager, days(1), 10)).toEqual([]);
      expect(await repository.markReconsentDue(manager, days(301), 10)).toEqual([expect.objectContaining({ consentedAt: days(300) })]);
    });

    it('marks only the connection asked for, when one is', async () => {
      const id = await consented('this-one', days(0));
      await consented('not-that-one', days(0));
      expect(await repository.markReconsentDue(db.dataSource.manager, days(1), 10, id)).toEqual([
        expect.objectContaining({ userId: 'this-one' }),
      ]);
      expect(await repository.markReconsentDue(db.dataSource.manager, days(1), 10, id)).toEqual([]);
    });

    it('counts the connections, not reauth_required, whose consent was given before a bound', async () => {
      await consented('a', days(0));
      await consented('b', days(1));
      await consented('c', days(5));
      await consented('gone', days(0), { status: 'reauth_required' });
      await repository.markReconsentDue(db.dataSource.manager, days(10), 10);
      expect(await repository.countConsentedBefore(db.dataSource.manager, days(2))).toBe(2);
    });
  });

  describe('scopes_outdated, once per consent and missing set', () => {
    it('marks connections lacking scopes, and again only when the set or the consent changes', async () => {
      const id = await consented('lacking', days(0), { missing: ['write:jira-work'] });
      await consented('complete', days(0));
      await consented('gone', days(0), { status: 'reauth_required', missing: ['write:jira-work'] });
      const manager = db.dataSource.manager;
      const mark = () => repository.markScopesOutdated(manager, 10);

      expect(await mark()).toEqual([
        { userId: 'lacking', atlassianAccountId: '712020:lacking', consentedAt: days(0), missingScopes: ['write:jira-work'] },
      ]);
      expect(await mark()).toEqual([]);

      await db.dataSource.query(`UPDATE connections SET missing_scopes = '{read:me,write:jira-work}' WHERE id = $1`, [id]);
      expect(await mark()).toEqual([expect.objectContaining({ missingScopes: ['read:me', 'write:jira-work'] })]);
      await db.dataSource.query(`UPDATE connections SET missing_scopes = '{}' WHERE id = $1`, [id]);
      expect(await mark()).toEqual([]);
      await db.dataSource.query(`UPDATE connections SET missing_scopes = '{read:me,write:jira-work}' WHERE id = $1`, [id]);
      expect(await mark()).toEqual([]);

      await db.dataSource.query(`UPDATE connections SET consented_at = $2 WHERE id = $1`, [id, days(10)]);
      expect(await mark()).toEqual([expect.objectContaining({ consentedAt: days(10) })]);
      expect(await mark()).toEqual([]);
    });

    it('marks only the connection asked for, when one is', async () => {
      const id = await consented('this-one', days(0), { missing: ['read:me'] });
      await consented('not-that-one', days(0), { missing: ['read:me'] });
      expect(await repository.markScopesOutdated(db.dataSource.manager, 10, id)).toEqual([expect.objectContaining({ userId: 'this-one' })]);
    });
  });

  describe('missing scopes', () => {
    it('lists each distinct granted set once, and stores what each set lacks on exactly the connections granted it', async () => {
      await insert('a', ['read:jira-work', 'offline_access']);
      await insert('b', ['read:jira-work', 'offline_access']);
      await insert('c', ['offline_access', 'read:jira-work']);
      await insert('d', [], ['stale']);
      await insert('e', ['read:jira-work', 'write:jira-work', 'offline_access'], ['stale']);
      const manager = db.dataSource.manager;

      const sets = await repository.grantedScopeSets(manager);
      expect(sets).toHaveLength(4);
      expect(sets).toEqual(
        expect.arrayContaining([
          ['read:jira-work', 'offline_access'],
          ['offline_access', 'read:jira-work'],
          [],
          ['read:jira-work', 'write:jira-work', 'offline_access'],
        ]),
      );

      const changed = await repository.storeMissingScopes(manager, [
        { granted: ['read:jira-work', 'offline_access'], missing: ['read:me', 'write:jira-work'] },
        { granted: [], missing: ['offline_access', 'read:jira-work'] },
        { granted: ['read:jira-work', 'write:jira-work', 'offline_access'], missing: [] },
      ]);
      expect(changed).toBe(4);
      const rows: { user_id: string; missing_scopes: string[] }[] = await db.dataSource.query(
        `SELECT user_id, missing_scopes FROM connections ORDER BY user_id`,
      );
      expect(Object.fromEntries(rows.map((r) => [r.user_id, r.missing_scopes]))).toEqual({
        a: ['read:me', 'write:jira-work'],
        b: ['read:me', 'write:jira-work'],
        c: [],
        d: ['offline_access', 'read:jira-work'],
        e: [],
      });
      // Nothing left to change: nothing is written.
      expect(
        await repository.storeMissingScopes(manager, [
          { granted: ['read:jira-work', 'offline_access'], missing: ['read:me', 'write:jira-work'] },
        ]),
      ).toBe(0);
    });

    it("answers a user's missing scopes, and nothing for a user without a connection", async () => {
      await insert('lacking', ['read:jira-work'], ['write:jira-work']);
      expect(await repository.findMissingScopes(db.dataSource.manager, 'lacking')).toEqual(['write:jira-work']);
      expect(await repository.findMissingScopes(db.dataSource.manager, 'nobody')).toBeUndefined();
    });
  });
});
