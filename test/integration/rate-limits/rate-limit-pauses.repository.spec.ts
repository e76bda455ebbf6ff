import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import type { Pause } from '../../../src/rate-limits/pause-book.js';
import { RateLimitPausesRepository } from '../../../src/rate-limits/rate-limit-pauses.repository.js';
import { drivers, openMigratedDatabase, type OpenedDatabase } from '../../utils/database.js';

const NOW = new Date('2026-03-02T09:00:00.000Z');
const at = (seconds: number) => new Date(NOW.getTime() + seconds * 1000);

function pause(key: string, untilSeconds: number, reason: string | null = 'jira-burst-based'): Pause {
  const kind = key.includes('/issue/') ? 'issue' : key.includes('/') ? 'site' : 'app';
  return { scope: { key, kind, product: 'jira' }, reason, until: at(untilSeconds) };
}

describe.each(drivers)('RateLimitPausesRepository on %s', (driver) => {
  let db: OpenedDatabase;
  let repository: RateLimitPausesRepository;

  beforeAll(async () => {
    db = await openMigratedDatabase(driver);
    repository = new RateLimitPausesRepository(db.dataSource);
  });
  afterAll(() => db?.close());
  beforeEach(() => db.dataSource.query('DELETE FROM atlassian_rate_limit_pauses'));

  it('answers the pauses in force, with their scope, reason and end', async () => {
    await repository.pause(pause('jira', 60, 'jira-quota-global-based'), NOW);
    await repository.pause(pause('jira/c1/issue/ABC-1', 5, 'jira-per-issue-on-write'), NOW);
    await repository.pause(pause('confluence/c2', 1, null), NOW);
    const active = await repository.findActive(at(2));
    expect(active.sort((a, b) => a.scope.key.localeCompare(b.scope.key))).toEqual([
      pause('jira', 60, 'jira-quota-global-based'),
      pause('jira/c1/issue/ABC-1', 5, 'jira-per-issue-on-write'),
    ]);
  });

  it('keeps the longer of two pauses of one scope, whichever was written last', async () => {
    await repository.pause(pause('jira/c1', 30, 'jira-quota-tenant-based'), NOW);
    await repository.pause(pause('jira/c1', 10, 'jira-burst-based'), NOW);
    expect(await repository.findActive(NOW)).toEqual([pause('jira/c1', 30, 'jira-quota-tenant-based')]);
    await repository.pause(pause('jira/c1', 45, 'jira-burst-based'), at(1));
    expect(await repository.findActive(NOW)).toEqual([pause('jira/c1', 45, 'jira-burst-based')]);
  });

  it('drops pauses that have ended when it writes a new one', async () => {
    await repository.pause(pause('jira/c1', 5), NOW);
    await repository.pause(pause('jira/c2', 5), NOW);
    await repository.pause(pause('jira/c3', 60), at(10));
    const rows: { scope: string }[] = await db.dataSource.query('SELECT scope FROM atlassian_rate_limit_pauses ORDER BY scope');
    expect(rows.map((row) => row.scope)).toEqual(['jira/c3']);
  });

  it('takes concurrent pauses of one scope from several writers, ending with the longest', async () => {
    await Promise.all([10, 40, 20, 30].map((seconds) => repository.pause(pause('jira', seconds), NOW)));
    expect(await repository.findActive(NOW)).toEqual([pause('jira', 40)]);
  });
});
