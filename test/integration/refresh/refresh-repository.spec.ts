import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { TokenCipher } from '../../../src/crypto/token-cipher.js';
import {
  ConnectionsRepository,
  type ClaimedConnection,
  type LeaseRequest,
  type RefreshedTokens,
  type RefreshedWrite,
} from '../../../src/connection-store/connections.repository.js';
import { OutboxRepository } from '../../../src/webhooks/outbox.repository.js';
import { ManualClock, outboxEvents, readConnection, seedConnections } from '../../utils/connections.js';
import { drivers, openMigratedDatabase, type OpenedDatabase } from '../../utils/database.js';
import { refreshConfig, truncate } from './refresh-stack.js';
import { cacheOff } from '../../utils/connection-cache.js';

const MINUTE = 60_000;
const LEASE_MS = 90_000;

describe.each(drivers)('ConnectionsRepository on %s', (driver) => {
  let db: OpenedDatabase;
  let repository: ConnectionsRepository;
  const cipher = new TokenCipher(refreshConfig('http://127.0.0.1:9'));
  let clock: ManualClock;

  beforeAll(async () => {
    db = await openMigratedDatabase(driver);
    repository = new ConnectionsRepository(db.dataSource, new OutboxRepository(), cacheOff());
  }, 30_000);
  afterAll(async () => {
    await db?.close();
  }, 30_000);
  beforeEach(async () => {
    await truncate(db.dataSource);
    clock = new ManualClock();
  });

  const lease = (owner = 'worker-a'): LeaseRequest => ({
    now: clock.now(),
    owner,
    leaseExpiresAt: new Date(clock.now().getTime() + LEASE_MS),
  });
  const minutesFromNow = (minutes: number) => new Date(clock.now().getTime() + minutes * MINUTE);

  async function seed(count: number, dueInMinutes: (i: number) => number): Promise<string[]> {
    return seedConnections(
      db.dataSource,
      cipher,
      clock,
      Array.from({ length: count }, (_, i) => ({
        userId: `user-${i}`,
        accessToken: `at-${i}`,
        refreshToken: `rt-${i}`,
        accessTokenExpiresAt: minutesFromNow(dueInMinutes(i) + 10),
        dueAt: minutesFromNow(dueInMinutes(i)),
      })),
    );
  }

  async function save(claim: ClaimedConnection, written: RefreshedTokens, events: RefreshedWrite['events'] = []): Promise<boolean> {
    return (await repository.saveRefreshed([{ claim, tokens: written, refreshedAt: clock.now(), events }])).has(claim.id);
  }

  function tokens(id: string, accessToken: string): RefreshedTokens {
    return {
      accessToken: cipher.seal(accessToken, { table: 'connections', rowId: id, column: 'access_token' }),
      refreshToken: cipher.seal(`${accessToken}-rt`, { table: 'connections', rowId: id, column: 'refresh_token' }),
      accessTokenExpiresAt: minutesFromNow(60),
      scopes: ['read:jira-work', 'offline_access'],
      missingScopes: ['read:me'],
      nextDueAt: minutesFromNow(50),
    };
  }

  it('claims due rows oldest first, up to the limit, and not again while leased', async () => {
    const ids = await seed(5, (i) => [-3, -1, 5, -2, 0][i]);
    const first = await repository.claimDue(lease(), clock.now(), 2);
    expect(first.map((c) => c.id)).toEqual([ids[0], ids[3]]);
    expect(first[0]).toMatchObject({ version: 1, previousLeaseId: null, previousAttemptedAt: null, attemptedAt: clock.now() });
    expect(first[0].leaseExpiresAt).toEqual(new Date(clock.now().getTime() + LEASE_MS));

    const second = await repository.claimDue(lease('worker-b'), clock.now(), 10);
    expect(second.map((c) => c.id)).toEqual([ids[1], ids[4]]);
    expect(await repository.claimDue(lease('worker-b'), clock.now(), 10)).toEqual([]);

    const row = await readConnection(db.dataSource, cipher, ids[0]);
    expect(row).toMatchObject({ leaseOwner: 'worker-a', refreshAttemptedAt: clock.now() });
    expect(row.dueAt).toEqual(row.leaseExpiresAt);
  });

  it('claims a row again after its lease expired, saying who held it and when the token was first presented', async () => {
    const [id] = await seed(1, () => -1);
    const [dead] = await repository.claimDue(lease(), clock.now(), 10);
    const firstAttempt = clock.now();
    clock.advance(LEASE_MS);
    const [recovered] = await repository.claimDue(lease('worker-b'), clock.now(), 10);
    expect(recovered).toMatchObject({ id, previousLeaseId: dead.leaseId, previousAttemptedAt: firstAttempt, attemptedAt: firstAttempt });
    expect(recovered.leaseId).not.toBe(dead.leaseId);
  });

  it('writes a new pair only under the lease and version it claimed (compare-and-swap)', async () => {
    const [id] = await seed(1, () => -1);
    const [stale] = await repository.claimDue(lease(), clock.now(), 10);
    clock.advance(LEASE_MS);
    const [current] = await repository.claimDue(lease('worker-b'), clock.now(), 10);

    expect(await save(current, tokens(id, 'newer'))).toBe(true);
    // The worker whose lease was taken over comes back late: it must not overwrite the newer pair.
    expect(await save(stale, tokens(id, 'older'))).toBe(false);
    const sameLeaseOldVersion: ClaimedConnection = { ...current, version: current.version - 1 };
    expect(await save(sameLeaseOldVersion, tokens(id, 'older'))).toBe(false);

    const row = await readConnection(db.dataSource, cipher, id);
    expect(row).toMatchObject({
      accessToken: 'newer',
      refreshToken: 'newer-rt',
      version: 2,
      status: 'active',
      leaseId: null,
      leaseOwner: null,
      leaseExpiresAt: null,
      refreshAttemptedAt: null,
      lastRefreshedAt: clock.now(),
      refreshTokenIssuedAt: clock.now(),
      dueAt: minutesFromNow(50),
    });
    expect(await repository.markFailing(stale, { error: 'late', retryAt: clock.now(), attemptedAt: null }, clock.now())).toBe(false);
    expect(await repository.releaseLease(stale, clock.now())).toBe(false);
  });

  it('keeps the stored refresh token when Atlassian answered without one, and the stored scopes when it named none', async () => {
    const [id] = await seed(1, () => -1);
    await db.dataSource.query(`UPDATE connections SET scopes = '{read:jira-work}', missing_scopes = '{write:jira-work}' WHERE id = $1`, [
      id,
    ]);
    const issuedAt = (await readConnection(db.dataSource, cipher, id)).refreshTokenIssuedAt;
    const [claim] = await repository.claimDue(lease(), clock.now(), 10);
    clock.advance(1000);
    expect(await save(claim, { ...tokens(id, 'only-access'), refreshToken: null, scopes: [], missingScopes: ['x'] })).toBe(true);
    const row = await readConnection(db.dataSource, cipher, id);
    expect(row).toMatchObject({ accessToken: 'only-access', refreshToken: 'rt-0', refreshTokenIssuedAt: issuedAt });
    expect(await db.dataSource.query(`SELECT scopes, missing_scopes FROM connections WHERE id = $1`, [id])).toEqual([
      { scopes: ['read:jira-work'], missing_scopes: ['write:jira-work'] },
    ]);
  });

  it('stores a batch row by row: rows that lost their lease are skipped, and only stored rows get their event', async () => {
    await seed(3, () => -1);
    const [lost, ...kept] = await repository.claimDue(lease(), clock.now(), 10);
    clock.advance(LEASE_MS);
    expect(await repository.claimOne(lease('worker-b'), lost.userId)).toMatchObject({ id: lost.id });
    const recovered = (userId: string) => [{ type: 'connection.recovered' as const, userId }];

    const saved = await repository.saveRefreshed(
      [lost, ...kept].map((claim) => ({
        claim,
        tokens: tokens(claim.id, `new-${claim.userId}`),
        refreshedAt: clock.now(),
        events: recovered(claim.userId),
      })),
    );
    expect([...saved].sort()).toEqual(kept.map((c) => c.id).sort());
    for (const claim of kept)
      expect(await readConnection(db.dataSource, cipher, claim.id)).toMatchObject({ accessToken: `new-${claim.userId}`, version: 2 });
    expect(await readConnection(db.dataSource, cipher, lost.id)).toMatchObject({
      accessToken: `at-${lost.userId.slice(5)}`,
      version: 1,
      leaseOwner: 'worker-b',
    });
    expect((await outboxEvents(db.dataSource)).map((e) => e.userId).sort()).toEqual(kept.map((c) => c.userId).sort());
  });

  it('writes the webhook event in the same transaction, and none when the lease was lost', async () => {
    const [id] = await seed(1, () => -1);
    const [stale] = await repository.claimDue(lease(), clock.now(), 10);
    clock.advance(LEASE_MS);
    const [current] = await repository.claimDue(lease('worker-b'), clock.now(), 10);
    const event = { type: 'connection.reauth_required' as const, userId: 'user-0', data: { reason: 'invalid_grant' } };

    expect(await repository.markReauthRequired(stale, 'invalid_grant', clock.now(), [event])).toBe(false);
    expect(await outboxEvents(db.dataSource)).toEqual([]);

    expect(await repository.markReauthRequired(current, 'invalid_grant', clock.now(), [event])).toBe(true);
    expect(await outboxEvents(db.dataSource)).toEqual([expect.objectContaining({ type: 'connection.reauth_required', userId: 'user-0' })]);
    expect(await readConnection(db.dataSource, cipher, id)).toMatchObject({
      status: 'reauth_required',
      accessToken: null,
      refreshToken: null,
      dueAt: null,
      version: 2,
    });
    expect(await repository.claimDue(lease(), minutesFromNow(10_000), 10)).toEqual([]);
    expect(await repository.claimOne(lease(), 'user-0')).toBeNull();
  });

  it('hands a lease back exactly as the row was before the claim', async () => {
    const [id] = await seed(1, () => -1);
    const before = await readConnection(db.dataSource, cipher, id);
    const [claim] = await repository.claimDue(lease(), clock.now(), 10);
    expect(await repository.releaseLease(claim, clock.now())).toBe(true);
    expect(await readConnection(db.dataSource, cipher, id)).toEqual(before);
  });

  it('claims one user ahead of time, but not while another lease lives or a failing row waits out its backoff', async () => {
    await seed(2, () => 30);
    const claim = await repository.claimOne(lease(), 'user-0');
    expect(claim).toMatchObject({ userId: 'user-0', previousDueAt: minutesFromNow(30) });
    expect(await repository.claimOne(lease('worker-b'), 'user-0')).toBeNull();

    const other = (await repository.claimOne(lease(), 'user-1'))!;
    expect(await repository.markFailing(other, { error: '503', retryAt: minutesFromNow(1), attemptedAt: null }, clock.now())).toBe(true);
    expect(await repository.claimOne(lease(), 'user-1')).toBeNull();
    clock.advance(MINUTE);
    expect(await repository.claimOne(lease(), 'user-1')).not.toBeNull();
  });

  it("reads several users' token states in one statement, by user", async () => {
    const ids = await seed(3, (i) => i * 10);
    const states = await repository.findTokenStates(['user-2', 'nobody', 'user-0']);
    expect([...states.keys()].sort()).toEqual(['user-0', 'user-2']);
    expect(states.get('user-2')).toMatchObject({ id: ids[2], status: 'active', version: 1, accessTokenExpiresAt: minutesFromNow(30) });
    expect(cipher.open(states.get('user-0')!.accessToken!, { table: 'connections', rowId: ids[0], column: 'access_token' })).toBe('at-0');
    expect(await repository.findTokenState('user-1')).toEqual((await repository.findTokenStates(['user-1'])).get('user-1'));
  });

  it('counts connections by status and finds the oldest due one', async () => {
    await seed(3, (i) => [-5, -1, 30][i]);
    expect(await repository.oldestDueAt(clock.now())).toEqual(minutesFromNow(-5));
    const counts = await repository.countByStatus(minutesFromNow(10));
    expect(counts).toEqual([{ status: 'active', count: 3, expiringSoon: 2 }]);
  });
});
