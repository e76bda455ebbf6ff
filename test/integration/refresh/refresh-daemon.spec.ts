import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import type { AppConfig } from '../../../src/config/app-config.js';
import { REFRESH_POLICY } from '../../../src/refresh/refresh.policy.js';
import type { ConnectionsRepository } from '../../../src/connection-store/connections.repository.js';
import {
  ManualClock,
  outboxEvents,
  readConnection,
  SandboxTokenEndpoint,
  seedConnection,
  seedConnections,
} from '../../utils/connections.js';
import { describePostgres, openMigratedDatabase, type OpenedDatabase } from '../../utils/database.js';
import {
  captureNestLogs,
  metricValue,
  refreshConfig,
  refreshStack,
  silenceNestLogs,
  truncate,
  type RefreshStack,
} from './refresh-stack.js';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

silenceNestLogs();

describePostgres('the refresh daemon', () => {
  let db: OpenedDatabase;
  let clock: ManualClock;
  let sandbox: SandboxTokenEndpoint;
  let config: AppConfig;
  let stack: RefreshStack;

  beforeAll(async () => {
    db = await openMigratedDatabase('postgres');
  }, 30_000);
  afterAll(async () => {
    await db?.close();
  }, 30_000);

  beforeEach(async () => {
    await truncate(db.dataSource);
    clock = new ManualClock();
    sandbox = await new SandboxTokenEndpoint(clock).start();
    config = refreshConfig(sandbox.url);
    stack = await refreshStack({ config, clock, dataSource: db.dataSource });
  });
  afterEach(async () => {
    await stack.close();
    await sandbox.close();
  });

  /** A connection holding a real token pair of a fresh sandbox grant, its access token expiring at `expiresAt`. */
  async function connected(login: string, expiresAt: Date, extra: { refreshTokenIssuedAt?: Date; dueAt?: Date } = {}): Promise<string> {
    const pair = await sandbox.connect(login);
    return seedConnection(db.dataSource, stack.cipher, clock, {
      userId: login,
      atlassianAccountId: pair.accountId,
      accessToken: pair.accessToken,
      refreshToken: pair.refreshToken,
      accessTokenExpiresAt: expiresAt,
      ...extra,
    });
  }

  describe('due selection', () => {
    it('refreshes exactly the connections whose access token expires within REFRESH_LEAD_SECONDS', async () => {
      const now = clock.now().getTime();
      const lead = config.refresh.leadSeconds * 1000;
      const expired = await connected('expired', new Date(now - MINUTE));
      const atLead = await connected('at-lead', new Date(now + lead));
      const insideLead = await connected('inside-lead', new Date(now + lead - 1000));
      const outsideLead = await connected('outside-lead', new Date(now + lead + 1000));
      const before = await readConnection(db.dataSource, stack.cipher, outsideLead);

      const report = await stack.service.runDueRefreshes();

      expect(report).toMatchObject({ claimed: 3, refreshed: 3, failing: 0, reauthRequired: 0 });
      for (const id of [expired, atLead, insideLead]) {
        const row = await readConnection(db.dataSource, stack.cipher, id);
        expect(row).toMatchObject({ status: 'active', version: 2, leaseId: null, refreshAttemptedAt: null, lastRefreshedAt: clock.now() });
        // Atlassian's access tokens live an hour: the next refresh is due `lead` before the new one expires.
        expect(row.accessTokenExpiresAt).toEqual(new Date(now + HOUR));
        expect(row.dueAt).toEqual(new Date(now + HOUR - lead));
        expect(row.refreshTokenIssuedAt).toEqual(clock.now());
      }
      expect(await readConnection(db.dataSource, stack.cipher, outsideLead)).toEqual(before);
      expect(sandbox.idp.stats()).toMatchObject({ refreshes: 3, reuseWithinLeeway: 0, reuseAfterLeeway: 0, overlappingRefreshes: 0 });

      clock.advance(2000);
      expect(await stack.service.runDueRefreshes()).toMatchObject({ claimed: 1, refreshed: 1 });
      expect((await readConnection(db.dataSource, stack.cipher, outsideLead)).version).toBe(2);
    });

    it('stores the rotated pair, so the next cycle presents the new refresh token and never an old one', async () => {
      const id = await connected('rotating', new Date(clock.now().getTime() + MINUTE));
      for (let cycle = 0; cycle < 5; cycle++) {
        expect(await stack.service.runDueRefreshes()).toMatchObject({ refreshed: 1 });
        clock.set((await readConnection(db.dataSource, stack.cipher, id)).dueAt!);
      }
      expect((await readConnection(db.dataSource, stack.cipher, id)).version).toBe(6);
      expect(sandbox.idp.stats()).toMatchObject({ refreshes: 5, reuseWithinLeeway: 0, reuseAfterLeeway: 0, grantsRevoked: 0 });
    });

    it('leaves reauth_required and not-yet-due connections alone, and leased ones until their lease ends', async () => {
      const now = clock.now().getTime();
      await seedConnection(db.dataSource, stack.cipher, clock, {
        userId: 'gone',
        status: 'reauth_required',
        accessToken: null,
        refreshToken: null,
        accessTokenExpiresAt: null,
        dueAt: new Date(now - HOUR),
      });
      const leased = await connected('leased', new Date(now - MINUTE));
      await db.dataSource.query(`UPDATE connections SET lease_id = gen_random_uuid(), lease_expires_at = $2, due_at = $2 WHERE id = $1`, [
        leased,
        new Date(now + MINUTE),
      ]);
      expect(await stack.service.runDueRefreshes()).toMatchObject({ claimed: 0 });
      clock.advance(MINUTE);
      expect(await stack.service.runDueRefreshes()).toMatchObject({ claimed: 1, refreshed: 1 });
    });
  });

  describe('keep-alive', () => {
    it('refreshes an idle connection whose refresh token is 30 days old, even though its access token is still valid', async () => {
      // Access tokens that outlive the keep-alive (not Atlassian's hour) leave the keep-alive as the only reason to refresh.
      sandbox.idp.updateSettings({ accessTokenTtlSeconds: 60 * 24 * 3600 });
      const id = await connected('idle', new Date(clock.now().getTime() + MINUTE));
      expect(await stack.service.runDueRefreshes()).toMatchObject({ refreshed: 1 });
      const refreshed = await readConnection(db.dataSource, stack.cipher, id);
      const keepAliveAt = new Date(clock.now().getTime() + REFRESH_POLICY.keepAliveMs);
      expect(refreshed.accessTokenExpiresAt).toEqual(new Date(clock.now().getTime() + 60 * DAY));
      expect(refreshed.dueAt).toEqual(keepAliveAt);

      clock.set(new Date(keepAliveAt.getTime() - 1000));
      expect(await stack.service.runDueRefreshes()).toMatchObject({ claimed: 0 });
      clock.set(keepAliveAt);
      expect(await stack.service.runDueRefreshes()).toMatchObject({ claimed: 1, refreshed: 1 });
      const kept = await readConnection(db.dataSource, stack.cipher, id);
      expect(kept.refreshTokenIssuedAt).toEqual(keepAliveAt);
      expect(kept.refreshToken).not.toBe(refreshed.refreshToken);
    });

    it('claims a seeded idle connection once its keep-alive time has come', async () => {
      const issuedAt = new Date(clock.now().getTime() - 30 * DAY);
      const id = await connected('seeded-idle', new Date(clock.now().getTime() + 20 * DAY), {
        refreshTokenIssuedAt: issuedAt,
        dueAt: new Date(issuedAt.getTime() + REFRESH_POLICY.keepAliveMs),
      });
      expect(await stack.service.runDueRefreshes()).toMatchObject({ claimed: 1, refreshed: 1 });
      expect((await readConnection(db.dataSource, stack.cipher, id)).refreshTokenIssuedAt).toEqual(clock.now());
    });
  });

  describe('crash between Atlassian answering and the write', () => {
    /** The process "dies" after the token endpoint answered: the write never reaches the database. */
    function dyingOnce(repository: ConnectionsRepository): ConnectionsRepository {
      let died = false;
      return Object.assign(Object.create(repository) as ConnectionsRepository, {
        saveOneRefreshed: async (...args: Parameters<ConnectionsRepository['saveOneRefreshed']>) => {
          if (!died) {
            died = true;
            throw new Error('connection terminated unexpectedly');
          }
          return repository.saveOneRefreshed(...args);
        },
      });
    }

    it('is recovered by lease expiry inside the leeway with the old refresh token, and the connection ends active', async () => {
      const crashing = await refreshStack({ config, clock, databaseUrl: db.url, wrapRepository: dyingOnce });
      const survivor = await refreshStack({ config, clock, databaseUrl: db.url });
      try {
        const id = await connected('crashy', new Date(clock.now().getTime() + MINUTE));
        const before = await readConnection(db.dataSource, stack.cipher, id);
        const claimedAt = clock.now();

        expect(await crashing.service.runDueRefreshes()).toMatchObject({ claimed: 1, errors: 1 });
        const lost = await readConnection(db.dataSource, stack.cipher, id);
        // Atlassian rotated the token, we hold nothing: the row still has the old pair, the lease and the attempt time.
        expect(sandbox.idp.stats().refreshes).toBe(1);
        expect(lost).toMatchObject({ version: 1, refreshToken: before.refreshToken, refreshAttemptedAt: claimedAt });
        expect(lost.leaseId).not.toBeNull();
        expect(lost.dueAt).toEqual(lost.leaseExpiresAt);

        // Nobody may take it while the lease lasts.
        clock.advance(REFRESH_POLICY.leaseMs - 1000);
        expect(await survivor.service.runDueRefreshes()).toMatchObject({ claimed: 0 });
        clock.advance(1000);
        expect(clock.now().getTime() - claimedAt.getTime()).toBeLessThan(REFRESH_POLICY.reuseLeewayMs);
        expect(await survivor.service.runDueRefreshes()).toMatchObject({ claimed: 1, refreshed: 1 });

        const recovered = await readConnection(db.dataSource, stack.cipher, id);
        expect(recovered).toMatchObject({ status: 'active', version: 2, leaseId: null, refreshAttemptedAt: null });
        expect(recovered.refreshToken).not.toBe(before.refreshToken);
        expect(sandbox.idp.stats()).toMatchObject({ refreshes: 2, reuseWithinLeeway: 1, reuseAfterLeeway: 0, grantsRevoked: 0 });
        expect(await metricValue(survivor.registry, 'atlassian_token_refresh_leases_recovered_total')).toBe(1);
        expect(await metricValue(survivor.registry, 'atlassian_token_refresh_late_recoveries_total')).toBe(0);

        // The recovered pair is a live one: the next refresh needs no leeway.
        clock.set(recovered.dueAt!);
        expect(await survivor.service.runDueRefreshes()).toMatchObject({ refreshed: 1 });
        expect(sandbox.idp.stats()).toMatchObject({ refreshes: 3, reuseWithinLeeway: 1, grantsRevoked: 0 });
      } finally {
        await crashing.close();
        await survivor.close();
      }
    });

    it('counts and warns about a recovery later than the leeway (the grant is lost then: reauth_required)', async () => {
      const crashing = await refreshStack({ config, clock, databaseUrl: db.url, wrapRepository: dyingOnce });
      const logs = captureNestLogs();
      try {
        const id = await connected('too-late', new Date(clock.now().getTime() + MINUTE));
        const { accessToken, refreshToken } = await readConnection(db.dataSource, stack.cipher, id);
        await crashing.service.runDueRefreshes();
        clock.advance(REFRESH_POLICY.reuseLeewayMs + MINUTE);

        expect(await stack.service.runDueRefreshes()).toMatchObject({ claimed: 1, reauthRequired: 1 });
        expect(logs.lines).toContainEqual({
          level: 'warn',
          message: expect.stringContaining("longer than Atlassian's 10-minute reuse leeway"),
        });
        expect(logs.lines).toContainEqual({ level: 'error', message: expect.stringContaining('connection terminated unexpectedly') });
        // Ids shortened, tokens never.
        for (const line of logs.lines) {
          expect(line.message).not.toContain(id);
          expect(line.message).not.toContain(refreshToken!);
          expect(line.message).not.toContain(accessToken!);
          expect(line.message).not.toContain('too-late');
        }
        expect(await metricValue(stack.registry, 'atlassian_token_refresh_leases_recovered_total')).toBe(1);
        expect(await metricValue(stack.registry, 'atlassian_token_refresh_late_recoveries_total')).toBe(1);
        expect((await readConnection(db.dataSource, stack.cipher, id)).status).toBe('reauth_required');
        expect(sandbox.idp.stats()).toMatchObject({ reuseAfterLeeway: 1, grantsRevoked: 1 });
      } finally {
        logs.stop();
        await crashing.close();
      }
    });
  });

  describe('graceful shutdown', () => {
    it('stops claiming, finishes the refreshes in flight and hands queued claims back untouched', async () => {
      sandbox.idp.setLatency({ tokenMs: 300 });
      const replica = await refreshStack({
        config: refreshConfig(sandbox.url, { REFRESH_CONCURRENCY: '2' }),
        clock,
        dataSource: db.dataSource,
      });
      const ids = await Promise.all(
        ['one', 'two', 'three', 'four'].map((login, i) => connected(login, new Date(clock.now().getTime() - (4 - i) * 1000))),
      );
      const before = await Promise.all(ids.map((id) => readConnection(db.dataSource, stack.cipher, id)));

      const cycle = replica.service.runDueRefreshes();
      while (sandbox.idp.stats().refreshesInFlight < 2) await new Promise((resolve) => setTimeout(resolve, 5));
      await replica.service.beforeApplicationShutdown();

      expect(await cycle).toMatchObject({ claimed: 4, refreshed: 2, released: 2 });
      expect(sandbox.idp.stats()).toMatchObject({ refreshes: 2, refreshesInFlight: 0 });
      expect((await readConnection(db.dataSource, stack.cipher, ids[0])).version).toBe(2);
      expect((await readConnection(db.dataSource, stack.cipher, ids[1])).version).toBe(2);
      expect(await readConnection(db.dataSource, stack.cipher, ids[2])).toEqual(before[2]);
      expect(await readConnection(db.dataSource, stack.cipher, ids[3])).toEqual(before[3]);
      expect(await replica.service.runDueRefreshes()).toMatchObject({ skipped: 'stopping' });
      await replica.close();
    }, 30_000);
  });

  describe('three replicas on one database', () => {
    it('refresh 200 due connections exactly once per cycle, never two refreshes of one grant at once, never a reuse', async () => {
      // Token calls take a little while, so overlapping refreshes of one grant would be seen if they happened.
      sandbox.idp.setLatency({ tokenMs: 5 });
      const replicas = await Promise.all([1, 2, 3].map(() => refreshStack({ config, clock, databaseUrl: db.url })));
      try {
        const pairs = await Promise.all(Array.from({ length: 200 }, (_, i) => sandbox.connect(`user-${i}`)));
        const ids = await seedConnections(
          db.dataSource,
          stack.cipher,
          clock,
          pairs.map((pair, i) => ({
            userId: `user-${i}`,
            atlassianAccountId: pair.accountId,
            accessToken: pair.accessToken,
            refreshToken: pair.refreshToken,
            accessTokenExpiresAt: new Date(clock.now().getTime() + (i % 10) * 1000),
          })),
        );

        for (let cycle = 1; cycle <= 3; cycle++) {
          const reports = await Promise.all(replicas.map((r) => r.service.runDueRefreshes()));
          expect(reports.reduce((sum, r) => sum + r.claimed, 0)).toBe(200);
          expect(reports.reduce((sum, r) => sum + r.refreshed, 0)).toBe(200);
          expect(reports.filter((r) => r.claimed > 0).length).toBeGreaterThan(1);

          const versions: { version: number; count: string }[] = await db.dataSource.query(
            `SELECT version, count(*) FROM connections WHERE id = ANY($1) GROUP BY version`,
            [ids],
          );
          expect(versions).toEqual([{ version: cycle + 1, count: '200' }]);
          expect(sandbox.idp.stats()).toMatchObject({
            refreshes: 200 * cycle,
            overlappingRefreshes: 0,
            reuseWithinLeeway: 0,
            reuseAfterLeeway: 0,
            grantsRevoked: 0,
          });
          // Everything is due again an hour minus the lead later.
          clock.advance(HOUR);
        }
        expect(sandbox.idp.stats().maxRefreshesInFlight).toBeGreaterThan(1);
        expect(await outboxEvents(db.dataSource)).toEqual([]);
      } finally {
        await Promise.all(replicas.map((r) => r.close()));
      }
    }, 60_000);
  });
});
