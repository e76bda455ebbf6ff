import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { LifecycleRepository } from '../../../src/lifecycle/lifecycle.repository.js';
import { drivers, openMigratedDatabase, type OpenedDatabase } from '../../utils/database.js';

describe.each(drivers)('LifecycleRepository on %s', (driver) => {
  let db: OpenedDatabase;
  const repository = new LifecycleRepository();

  beforeAll(async () => {
    db = await openMigratedDatabase(driver);
  }, 30_000);
  afterAll(() => db?.close());
  beforeEach(() => db.dataSource.query(`TRUNCATE connections, webhook_outbox CASCADE`));

  async function insert(userId: string, scopes: string[], missing: string[] = []): Promise<void> {
    await db.dataSource.query(
      `INSERT INTO connections (user_id, atlassian_account_id, status, scopes, missing_scopes) VALUES ($1, 'acc', 'active', $2, $3)`,
      [userId, scopes, missing],
    );
  }

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
