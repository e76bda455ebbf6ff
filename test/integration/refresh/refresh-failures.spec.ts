import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { HealthIndicatorService } from '@nestjs/terminus';
import { AtlassianClient } from '../../../src/atlassian/atlassian.client.js';
import { AtlassianError } from '../../../src/atlassian/atlassian.errors.js';
import type { TokenSet } from '../../../src/atlassian/atlassian.types.js';
import type { AppConfig } from '../../../src/config/app-config.js';
import { RefreshHealthIndicator } from '../../../src/refresh/refresh.health.js';
import { REFRESH_POLICY } from '../../../src/refresh/refresh.policy.js';
import {
  ManualClock,
  outboxEvents,
  readConnection,
  SandboxTokenEndpoint,
  seedConnection,
  type StoredConnection,
} from '../../utils/connections.js';
import { describePostgres, openMigratedDatabase, type OpenedDatabase } from '../../utils/database.js';
import { FixedRandom, metricValue, refreshConfig, refreshStack, silenceNestLogs, truncate, type RefreshStack } from './refresh-stack.js';

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;

silenceNestLogs();

/** Answers unauthorized_client for one refresh token, and like the sandbox for every other. */
class RefusingClient extends AtlassianClient {
  constructor(
    config: AppConfig,
    private readonly refused: () => string | null,
  ) {
    super(config);
  }

  override refresh(refreshToken: string): Promise<TokenSet> {
    if (refreshToken === this.refused()) {
      return Promise.reject(
        new AtlassianError('unauthorized_client', 'Atlassian answered unauthorized_client: refresh_token is invalid', { status: 403 }),
      );
    }
    return super.refresh(refreshToken);
  }
}

describePostgres('refresh failures', () => {
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
    stack = await refreshStack({ config, clock, dataSource: db.dataSource, random: new FixedRandom(0.5) });
  });
  afterEach(async () => {
    await stack.close();
    await sandbox.close();
  });

  async function connected(login: string, expiresInMs = 5 * MINUTE): Promise<string> {
    const pair = await sandbox.connect(login);
    return seedConnection(db.dataSource, stack.cipher, clock, {
      userId: login,
      atlassianAccountId: pair.accountId,
      accessToken: pair.accessToken,
      refreshToken: pair.refreshToken,
      accessTokenExpiresAt: new Date(clock.now().getTime() + expiresInMs),
    });
  }

  const read = (id: string): Promise<StoredConnection> => readConnection(db.dataSource, stack.cipher, id);
  const since = (start: Date, row: StoredConnection): number => row.dueAt!.getTime() - start.getTime();

  describe('transient failures', () => {
    it('a 503 storm backs off exponentially with full jitter, never asks for consent, and recovers with one webhook', async () => {
      const id = await connected('stormy');
      const before = await read(id);
      sandbox.idp.addFault({ count: 4, endpoint: 'token', status: 503 });

      // random() = 0.5 takes half of the exponential ceiling: 10 s, 20 s, 40 s, 80 s.
      const expectedDelays = [5 * SECOND, 10 * SECOND, 20 * SECOND, 40 * SECOND];
      for (const [attempt, delay] of expectedDelays.entries()) {
        const start = clock.now();
        expect(await stack.service.runDueRefreshes()).toMatchObject({ claimed: 1, failing: 1 });
        const row = await read(id);
        expect(row).toMatchObject({ status: 'refresh_failing', consecutiveFailures: attempt + 1, leaseId: null, version: 1 });
        expect(row.lastError).toContain('503');
        // 503 says "not processed": the stored refresh token was not spent, nothing to recover.
        expect(row.refreshAttemptedAt).toBeNull();
        expect(row.refreshToken).toBe(before.refreshToken);
        expect(since(start, row)).toBe(delay);

        clock.advance(delay - 1);
        expect(await stack.service.runDueRefreshes()).toMatchObject({ claimed: 0 });
        clock.advance(1);
      }

      expect(await stack.service.runDueRefreshes()).toMatchObject({ claimed: 1, refreshed: 1 });
      expect(await read(id)).toMatchObject({ status: 'active', consecutiveFailures: 0, version: 2 });
      const events = await outboxEvents(db.dataSource);
      expect(events).toEqual([
        { type: 'connection.recovered', userId: 'stormy', body: expect.objectContaining({ type: 'connection.recovered' }) },
      ]);
      expect(sandbox.idp.stats()).toMatchObject({ faultsServed: 4, refreshes: 1, reuseWithinLeeway: 0, grantsRevoked: 0 });
    });

    it('the jitter is full: the delay is random() times the exponential ceiling, at least a second', async () => {
      const low = await refreshStack({ config, clock, dataSource: db.dataSource, random: new FixedRandom(0) });
      const high = await refreshStack({ config, clock, dataSource: db.dataSource, random: new FixedRandom(0.999) });
      try {
        const a = await connected('jitter-low');
        sandbox.idp.addFault({ count: 1, endpoint: 'token', status: 503 });
        const start = clock.now();
        await low.service.runDueRefreshes();
        expect(since(start, await read(a))).toBe(REFRESH_POLICY.minRetryMs);

        await truncate(db.dataSource);
        const b = await connected('jitter-high');
        await db.dataSource.query(`UPDATE connections SET consecutive_failures = 20, status = 'refresh_failing' WHERE id = $1`, [b]);
        sandbox.idp.addFault({ count: 1, endpoint: 'token', status: 503 });
        await high.service.runDueRefreshes();
        expect(since(start, await read(b))).toBe(Math.floor(0.999 * REFRESH_POLICY.backoffCapMs));
      } finally {
        await low.close();
        await high.close();
      }
    });

    it('a 429 is retried no sooner than its Retry-After', async () => {
      const id = await connected('limited');
      sandbox.idp.addFault({ count: 1, endpoint: 'token', status: 429, retryAfterSeconds: 120 });
      const start = clock.now();
      expect(await stack.service.runDueRefreshes()).toMatchObject({ failing: 1 });
      const row = await read(id);
      expect(row).toMatchObject({ status: 'refresh_failing', refreshAttemptedAt: null });
      expect(since(start, row)).toBe(120 * SECOND);

      clock.advance(119 * SECOND);
      expect(await stack.service.runDueRefreshes()).toMatchObject({ claimed: 0 });
      clock.advance(SECOND);
      expect(await stack.service.runDueRefreshes()).toMatchObject({ refreshed: 1 });
      expect((await read(id)).status).toBe('active');
    });

    it('a timed-out refresh that Atlassian did perform is retried inside the leeway with the old token, and recovers', async () => {
      const impatient = await refreshStack({
        config,
        clock,
        dataSource: db.dataSource,
        atlassian: new AtlassianClient(config, { timeoutMs: 200 }),
      });
      try {
        const id = await connected('slow');
        const before = await read(id);
        // The sandbox rotates the token, then holds the answer back longer than the client waits.
        sandbox.idp.addFault({ count: 1, endpoint: 'token', timeoutMs: 1500 });
        const attemptedAt = clock.now();
        expect(await impatient.service.runDueRefreshes()).toMatchObject({ failing: 1 });
        const failing = await read(id);
        expect(failing).toMatchObject({ status: 'refresh_failing', refreshAttemptedAt: attemptedAt, refreshToken: before.refreshToken });
        expect(failing.lastError).toContain('did not answer');
        expect(failing.dueAt!.getTime()).toBeLessThanOrEqual(attemptedAt.getTime() + REFRESH_POLICY.lostAnswerRetryWithinMs);

        clock.set(failing.dueAt!);
        expect(await impatient.service.runDueRefreshes()).toMatchObject({ refreshed: 1 });
        expect(await read(id)).toMatchObject({ status: 'active', refreshAttemptedAt: null, version: 2 });
        expect(sandbox.idp.stats()).toMatchObject({ refreshes: 2, reuseWithinLeeway: 1, reuseAfterLeeway: 0, grantsRevoked: 0 });
      } finally {
        await impatient.close();
      }
    });

    it('gateway errors (502) that may hide a rotation keep the first attempt time and retry inside the leeway', async () => {
      const patient = await refreshStack({ config, clock, dataSource: db.dataSource, random: new FixedRandom(0.999) });
      try {
        const id = await connected('gateway');
        sandbox.idp.addFault({ count: 6, endpoint: 'token', status: 502 });
        const firstAttempt = clock.now();
        const windowEnd = firstAttempt.getTime() + REFRESH_POLICY.lostAnswerRetryWithinMs;
        const retries: number[] = [];
        for (let i = 0; i < 6; i++) {
          expect(await patient.service.runDueRefreshes()).toMatchObject({ failing: 1 });
          const row = await read(id);
          expect(row.refreshAttemptedAt).toEqual(firstAttempt);
          // Every retry scheduled while the window is open falls inside it (the uncapped 5th would come at ~310 s).
          if (clock.now().getTime() < windowEnd) expect(row.dueAt!.getTime()).toBeLessThanOrEqual(windowEnd);
          retries.push(row.dueAt!.getTime() - firstAttempt.getTime());
          clock.set(row.dueAt!);
        }
        expect(retries[4]).toBe(REFRESH_POLICY.lostAnswerRetryWithinMs);
        // Once the window is past there is nothing left to protect: plain backoff.
        expect(retries[5]).toBeGreaterThan(REFRESH_POLICY.lostAnswerRetryWithinMs + 4 * MINUTE);
        expect(await patient.service.runDueRefreshes()).toMatchObject({ refreshed: 1 });
        expect(await read(id)).toMatchObject({ status: 'active', refreshAttemptedAt: null });
      } finally {
        await patient.close();
      }
    });
  });

  describe('a dead grant', () => {
    it('invalid_grant marks exactly that connection reauth_required, drops its tokens, sends one webhook, and is never retried', async () => {
      const alive = await connected('alive');
      const revoked = await connected('revoked');
      const alsoAlive = await connected('also-alive');
      sandbox.idp.revokeAccount('revoked');

      expect(await stack.service.runDueRefreshes()).toMatchObject({ claimed: 3, refreshed: 2, reauthRequired: 1 });
      const dead = await read(revoked);
      expect(dead).toMatchObject({
        status: 'reauth_required',
        accessTokenCiphertext: null,
        refreshTokenCiphertext: null,
        dueAt: null,
        leaseId: null,
        refreshAttemptedAt: null,
        version: 2,
      });
      expect(dead.lastError).toContain('invalid_grant');
      for (const id of [alive, alsoAlive]) expect(await read(id)).toMatchObject({ status: 'active', version: 2 });
      const events = await outboxEvents(db.dataSource);
      expect(events).toHaveLength(1);
      expect(events[0]).toMatchObject({ type: 'connection.reauth_required', userId: 'revoked', body: { reason: 'invalid_grant' } });

      const calls = sandbox.idp.stats().tokenCalls.refresh_token;
      clock.advance(HOUR);
      expect(await stack.service.runDueRefreshes()).toMatchObject({ claimed: 2, refreshed: 2 });
      expect(sandbox.idp.stats().tokenCalls.refresh_token).toBe(calls + 2);
    });

    it('unauthorized_client on refresh is a dead grant as well', async () => {
      const other = await connected('other');
      const id = await connected('refused');
      const refusedToken = (await read(id)).refreshToken;
      const refusing = await refreshStack({
        config,
        clock,
        dataSource: db.dataSource,
        atlassian: new RefusingClient(config, () => refusedToken),
      });
      try {
        expect(await refusing.service.runDueRefreshes()).toMatchObject({ refreshed: 1, reauthRequired: 1 });
        expect(await read(id)).toMatchObject({ status: 'reauth_required', refreshTokenCiphertext: null });
        expect(await read(other)).toMatchObject({ status: 'active' });
        const events = await outboxEvents(db.dataSource);
        expect(events).toEqual([
          expect.objectContaining({ type: 'connection.reauth_required', body: expect.objectContaining({ reason: 'unauthorized_client' }) }),
        ]);
      } finally {
        await refusing.close();
      }
    });
  });

  describe('a wrong client secret (401 access_denied)', () => {
    it('marks nobody, hands the leases back unspent, pauses this replica, and readiness says why', async () => {
      const wrongConfig = refreshConfig(sandbox.url, {
        ATLASSIAN_CLIENT_ID: 'sandbox-client-id',
        ATLASSIAN_CLIENT_SECRET: 'not-the-secret',
        REFRESH_CONCURRENCY: '2',
      });
      const misconfigured = await refreshStack({ config: wrongConfig, clock, dataSource: db.dataSource });
      const health = new RefreshHealthIndicator(new HealthIndicatorService(), misconfigured.service);
      try {
        const ids = await Promise.all(['a', 'b', 'c', 'd', 'e'].map((login) => connected(`user-${login}`)));
        const before = await Promise.all(ids.map(read));
        expect(health.check('refresh')).toEqual({ refresh: { status: 'up' } });

        const report = await misconfigured.service.runDueRefreshes();
        expect(report.credentialsRejected).toBeGreaterThanOrEqual(1);
        expect(report.credentialsRejected).toBeLessThanOrEqual(2);
        expect(report.refreshed + report.failing + report.reauthRequired).toBe(0);
        const calls = sandbox.idp.stats().tokenCalls.refresh_token;
        expect(calls).toBe(report.credentialsRejected);

        // Every row exactly as it was: no status change, no attempt recorded, still due, no webhook.
        expect(await Promise.all(ids.map(read))).toEqual(before);
        expect(await outboxEvents(db.dataSource)).toEqual([]);

        const readiness = health.check('refresh');
        expect(readiness.refresh.status).toBe('degraded');
        expect(readiness.refresh).toMatchObject({ message: expect.stringContaining('ATLASSIAN_CLIENT_SECRET') });
        expect(await metricValue(misconfigured.registry, 'atlassian_client_credentials_rejected')).toBe(1);

        expect(await misconfigured.service.runDueRefreshes()).toMatchObject({ skipped: 'paused' });
        clock.advance(REFRESH_POLICY.credentialsRejectedPauseMs - SECOND);
        expect(await misconfigured.service.runDueRefreshes()).toMatchObject({ skipped: 'paused' });
        expect(sandbox.idp.stats().tokenCalls.refresh_token).toBe(calls);

        // After the pause it tries again (and is refused again); a replica with the right secret refreshes everyone.
        clock.advance(SECOND);
        expect((await misconfigured.service.runDueRefreshes()).credentialsRejected).toBeGreaterThanOrEqual(1);
        expect(await stack.service.runDueRefreshes()).toMatchObject({ refreshed: 5 });
        for (const id of ids) expect(await read(id)).toMatchObject({ status: 'active', version: 2 });
      } finally {
        await misconfigured.close();
      }
    });

    it('clears the alarm once a refresh succeeds again', async () => {
      const rejecting = { secret: 'not-the-secret' };
      const flipping = new (class extends AtlassianClient {
        override refresh(refreshToken: string): Promise<TokenSet> {
          if (rejecting.secret !== 'ok')
            return Promise.reject(new AtlassianError('client_unauthorized', 'Atlassian refused the client credentials', { status: 401 }));
          return super.refresh(refreshToken);
        }
      })(config);
      const replica = await refreshStack({ config, clock, dataSource: db.dataSource, atlassian: flipping });
      try {
        await connected('waiting');
        expect(await replica.service.runDueRefreshes()).toMatchObject({ credentialsRejected: 1 });
        expect(replica.service.credentialsRejection()).not.toBeNull();
        rejecting.secret = 'ok';
        clock.advance(REFRESH_POLICY.credentialsRejectedPauseMs);
        expect(await replica.service.runDueRefreshes()).toMatchObject({ refreshed: 1 });
        expect(replica.service.credentialsRejection()).toBeNull();
        expect(await metricValue(replica.registry, 'atlassian_client_credentials_rejected')).toBe(0);
      } finally {
        await replica.close();
      }
    });
  });
});
