import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { TokenCipher } from '../../../src/crypto/token-cipher.js';
import { ConnectionsRepository } from '../../../src/connection-store/connections.repository.js';
import { RefreshStatusService } from '../../../src/refresh/refresh-status.service.js';
import { OutboxRepository } from '../../../src/webhooks/outbox.repository.js';
import { ManualClock, seedConnections } from '../../utils/connections.js';
import { drivers, openMigratedDatabase, type OpenedDatabase } from '../../utils/database.js';
import { refreshConfig, truncate } from './refresh-stack.js';
import { cacheOff } from '../../utils/connection-cache.js';

const MINUTE = 60_000;

describe.each(drivers)('RefreshStatusService on %s', (driver) => {
  let db: OpenedDatabase;
  let clock: ManualClock;
  let service: RefreshStatusService;
  const cipher = new TokenCipher(refreshConfig('http://127.0.0.1:9'));

  beforeAll(async () => {
    db = await openMigratedDatabase(driver);
  }, 30_000);
  afterAll(() => db?.close(), 30_000);
  beforeEach(async () => {
    await truncate(db.dataSource);
    clock = new ManualClock();
    service = new RefreshStatusService(new ConnectionsRepository(db.dataSource, new OutboxRepository(), cacheOff()), clock);
  });

  const minutesAgo = (minutes: number) => new Date(clock.now().getTime() - minutes * MINUTE);

  it('counts by status, the overdue backlog, expired active tokens, and refreshes unanswered past the reuse leeway', async () => {
    const [, , stuck, , recent] = await seedConnections(db.dataSource, cipher, clock, [
      { userId: 'fresh', accessToken: 'at', refreshToken: 'rt', accessTokenExpiresAt: minutesAgo(-40), dueAt: minutesAgo(-30) },
      { userId: 'late', accessToken: 'at', refreshToken: 'rt', accessTokenExpiresAt: minutesAgo(1), dueAt: minutesAgo(3) },
      {
        userId: 'stuck',
        status: 'refresh_failing',
        accessToken: 'at',
        refreshToken: 'rt',
        accessTokenExpiresAt: minutesAgo(-5),
        dueAt: minutesAgo(1),
        consecutiveFailures: 2,
      },
      {
        userId: 'gone',
        status: 'reauth_required',
        accessToken: null,
        refreshToken: null,
        accessTokenExpiresAt: null,
        dueAt: minutesAgo(90),
      },
      { userId: 'recent', accessToken: 'at', refreshToken: 'rt', accessTokenExpiresAt: minutesAgo(-50), dueAt: minutesAgo(-40) },
    ]);
    await db.dataSource.query(`UPDATE connections SET refresh_attempted_at = $2 WHERE id = $1`, [stuck, minutesAgo(25)]);
    await db.dataSource.query(`UPDATE connections SET refresh_attempted_at = $2 WHERE id = $1`, [recent, minutesAgo(9)]);

    const snapshot = await service.snapshot(10);

    expect(snapshot).toEqual({
      at: clock.now(),
      byStatus: { active: 3, refresh_failing: 1, reauth_required: 1 },
      oldestOverdueAt: minutesAgo(3),
      overdue: 2,
      expiredActive: 1,
      unresolvedCount: 1,
      unresolved: [{ userId: 'stuck', status: 'refresh_failing', attemptedAt: minutesAgo(25), consecutiveFailures: 2 }],
    });
  });

  it('answers zeros and no examples for an empty table', async () => {
    expect(await service.snapshot(10)).toMatchObject({
      byStatus: { active: 0, refresh_failing: 0, reauth_required: 0 },
      oldestOverdueAt: null,
      overdue: 0,
      expiredActive: 0,
      unresolvedCount: 0,
      unresolved: [],
    });
  });
});
