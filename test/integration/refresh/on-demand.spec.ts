import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import type { AppConfig } from '../../../src/config/app-config.js';
import { ConnectionNotFoundError, DomainError, ReauthRequiredError } from '../../../src/common/errors.js';
import { REFRESH_POLICY } from '../../../src/refresh/refresh.policy.js';
import { Sleeper } from '../../../src/refresh/timing.js';
import { ManualClock, readConnection, SandboxTokenEndpoint, seedConnection } from '../../utils/connections.js';
import { describePostgres, openMigratedDatabase, type OpenedDatabase } from '../../utils/database.js';
import { refreshConfig, refreshStack, silenceNestLogs, truncate, type RefreshStack } from './refresh-stack.js';

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;

silenceNestLogs();

/** "Waits" without waiting, counts how long it was asked to wait, and lets a test act while the caller waits. */
class InstantSleeper extends Sleeper {
  total = 0;
  whileWaiting?: () => Promise<void>;

  async sleep(ms: number): Promise<void> {
    this.total += ms;
    const action = this.whileWaiting;
    this.whileWaiting = undefined;
    await (action ? action() : new Promise((resolve) => setImmediate(resolve)));
  }
}

async function rejection(work: Promise<unknown>): Promise<DomainError> {
  try {
    await work;
  } catch (error) {
    return error as DomainError;
  }
  throw new Error('expected a rejection');
}

describePostgres('on-demand access tokens', () => {
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

  async function connected(login: string, expiresInMs: number): Promise<{ id: string; accessToken: string }> {
    const pair = await sandbox.connect(login);
    const id = await seedConnection(db.dataSource, stack.cipher, clock, {
      userId: login,
      atlassianAccountId: pair.accountId,
      accessToken: pair.accessToken,
      refreshToken: pair.refreshToken,
      accessTokenExpiresAt: new Date(clock.now().getTime() + expiresInMs),
    });
    return { id, accessToken: pair.accessToken };
  }

  it('answers the stored token while it stays valid for minValiditySeconds, without calling Atlassian', async () => {
    const { accessToken } = await connected('fresh', 30 * MINUTE);
    expect(await stack.accessTokens.accessToken('fresh', 60)).toEqual({
      accessToken,
      expiresAt: new Date(clock.now().getTime() + 30 * MINUTE).toISOString(),
    });
    expect(await stack.accessTokens.accessToken('fresh', 30 * 60)).toMatchObject({ accessToken });
    expect(sandbox.idp.stats().tokenCalls.refresh_token).toBe(0);
  });

  it('refreshes now when the stored token would not last minValiditySeconds', async () => {
    const { id, accessToken } = await connected('stale', 30 * MINUTE);
    const answer = await stack.accessTokens.accessToken('stale', 30 * 60 + 1);
    expect(answer.accessToken).not.toBe(accessToken);
    const row = await readConnection(db.dataSource, stack.cipher, id);
    expect(row).toMatchObject({ accessToken: answer.accessToken, version: 2, status: 'active', leaseId: null });
    expect(answer.expiresAt).toBe(new Date(clock.now().getTime() + HOUR).toISOString());
  });

  it('racing the daemon on the same connection: one refresh, and every caller gets the new token', async () => {
    sandbox.idp.setLatency({ tokenMs: 150 });
    const daemon = await refreshStack({ config, clock, databaseUrl: db.url });
    const other = await refreshStack({ config, clock, databaseUrl: db.url });
    try {
      const { id, accessToken } = await connected('contended', 2 * MINUTE);
      const [, here, there, again] = await Promise.all([
        daemon.service.runDueRefreshes(),
        other.accessTokens.accessToken('contended', 300),
        daemon.accessTokens.accessToken('contended', 300),
        other.accessTokens.accessToken('contended', 300),
      ]);
      const row = await readConnection(db.dataSource, stack.cipher, id);
      expect(row.accessToken).not.toBe(accessToken);
      for (const answer of [here, there, again]) expect(answer.accessToken).toBe(row.accessToken);
      expect(row.version).toBe(2);
      expect(sandbox.idp.stats()).toMatchObject({ refreshes: 1, overlappingRefreshes: 0, reuseWithinLeeway: 0 });
    } finally {
      await daemon.close();
      await other.close();
    }
  });

  it('coalesces concurrent requests in one process into one refresh', async () => {
    sandbox.idp.setLatency({ tokenMs: 50 });
    await connected('popular', 0);
    const answers = await Promise.all(Array.from({ length: 20 }, () => stack.accessTokens.accessToken('popular', 60)));
    expect(new Set(answers.map((a) => a.accessToken)).size).toBe(1);
    expect(sandbox.idp.stats()).toMatchObject({ refreshes: 1, overlappingRefreshes: 0 });
  });

  it('waits for another worker holding the lease, bounded, then answers 503 with Retry-After', async () => {
    const sleeper = new InstantSleeper();
    const waiting = await refreshStack({ config, clock, dataSource: db.dataSource, sleeper });
    try {
      const { id } = await connected('held', 0);
      const leaseEnds = new Date(clock.now().getTime() + 60 * SECOND);
      await db.dataSource.query(`UPDATE connections SET lease_id = gen_random_uuid(), lease_expires_at = $2, due_at = $2 WHERE id = $1`, [
        id,
        leaseEnds,
      ]);

      const error = await rejection(waiting.accessTokens.accessToken('held', 60));
      expect(error).toBeInstanceOf(DomainError);
      expect(error).toMatchObject({ code: 'atlassian_unavailable', status: 503, headers: { 'Retry-After': '60' } });
      expect(sleeper.total).toBeGreaterThanOrEqual(REFRESH_POLICY.onDemandMaxWaitMs);
      expect(sleeper.total).toBeLessThan(REFRESH_POLICY.onDemandMaxWaitMs + REFRESH_POLICY.onDemandMaxPollMs);
      expect(sandbox.idp.stats().tokenCalls.refresh_token).toBe(0);

      // Once the holder's lease is over, the connection is claimed and refreshed on demand.
      clock.set(leaseEnds);
      expect((await waiting.accessTokens.accessToken('held', 60)).accessToken).toBe(
        (await readConnection(db.dataSource, stack.cipher, id)).accessToken,
      );
    } finally {
      await waiting.close();
    }
  });

  it('stops waiting as soon as the other worker stored its answer', async () => {
    const sleeper = new InstantSleeper();
    const waiting = await refreshStack({ config, clock, dataSource: db.dataSource, sleeper });
    try {
      const { id } = await connected('handover', 0);
      await db.dataSource.query(`UPDATE connections SET lease_id = gen_random_uuid(), lease_expires_at = $2, due_at = $2 WHERE id = $1`, [
        id,
        new Date(clock.now().getTime() + 60 * SECOND),
      ]);
      // While the caller waits, the other worker finishes: it stores a new token (version + 1) and drops its lease.
      sleeper.whileWaiting = async () => {
        const sealed = stack.cipher.seal('stored-by-the-other-worker', { table: 'connections', rowId: id, column: 'access_token' });
        await db.dataSource.query(
          `UPDATE connections SET access_token_ciphertext = $2, access_token_key_id = $3, access_token_expires_at = $4,
             version = version + 1, lease_id = NULL, lease_expires_at = NULL WHERE id = $1`,
          [id, sealed.ciphertext, sealed.keyId, new Date(clock.now().getTime() + HOUR)],
        );
      };
      expect((await waiting.accessTokens.accessToken('handover', 60)).accessToken).toBe('stored-by-the-other-worker');
      expect(sleeper.total).toBe(REFRESH_POLICY.onDemandFirstPollMs);
      expect(sandbox.idp.stats().tokenCalls.refresh_token).toBe(0);
    } finally {
      await waiting.close();
    }
  });

  describe('forceRefresh, for a token Atlassian refused before its expiry', () => {
    it('refreshes a token that still looks valid', async () => {
      const { id, accessToken } = await connected('refused', 30 * MINUTE);
      clock.advance(SECOND);
      const answer = await stack.accessTokens.accessToken('refused', 60, { forceRefresh: true });
      expect(answer.accessToken).not.toBe(accessToken);
      expect(await readConnection(db.dataSource, stack.cipher, id)).toMatchObject({ accessToken: answer.accessToken, version: 2 });
      expect(sandbox.idp.stats()).toMatchObject({ refreshes: 1 });
    });

    it('callers forcing at once on several replicas share one refresh, and so do those that come just after it', async () => {
      sandbox.idp.setLatency({ tokenMs: 100 });
      const replicas = [
        await refreshStack({ config, clock, databaseUrl: db.url }),
        await refreshStack({ config, clock, databaseUrl: db.url }),
      ];
      try {
        const { id, accessToken } = await connected('stampede', 30 * MINUTE);
        clock.advance(SECOND);
        const force = (index: number) => replicas[index % 2].accessTokens.accessToken('stampede', 60, { forceRefresh: true });
        const answers = await Promise.all(Array.from({ length: 12 }, (_, index) => force(index)));
        const late = await Promise.all([force(0), force(1)]);
        const row = await readConnection(db.dataSource, stack.cipher, id);
        expect(row.accessToken).not.toBe(accessToken);
        expect(new Set([...answers, ...late].map((a) => a.accessToken))).toEqual(new Set([row.accessToken]));
        expect(sandbox.idp.stats()).toMatchObject({ refreshes: 1, overlappingRefreshes: 0, reuseWithinLeeway: 0, reuseAfterLeeway: 0 });

        // Once that refresh is older than the spacing between refreshes, forcing refreshes again.
        clock.advance(REFRESH_POLICY.minRefreshSpacingMs);
        expect((await force(0)).accessToken).not.toBe(row.accessToken);
        expect(sandbox.idp.stats()).toMatchObject({ refreshes: 2 });
      } finally {
        await Promise.all(replicas.map((replica) => replica.close()));
      }
    });

    it('never answers the refused token: 503 with Retry-After while Atlassian fails', async () => {
      await connected('refused-in-outage', 30 * MINUTE);
      clock.advance(SECOND);
      sandbox.idp.addFault({ count: 1, endpoint: 'token', status: 503 });
      expect(await rejection(stack.accessTokens.accessToken('refused-in-outage', 60, { forceRefresh: true }))).toMatchObject({
        code: 'atlassian_unavailable',
        headers: { 'Retry-After': expect.any(String) },
      });
      // The backoff holds: a forced refresh does not present the refresh token again before it.
      const calls = sandbox.idp.stats().tokenCalls.refresh_token;
      expect(await rejection(stack.accessTokens.accessToken('refused-in-outage', 60, { forceRefresh: true }))).toMatchObject({
        code: 'atlassian_unavailable',
      });
      expect(sandbox.idp.stats().tokenCalls.refresh_token).toBe(calls);
    });

    it('answers 409 when the forced refresh finds the grant revoked', async () => {
      await connected('refused-for-good', 30 * MINUTE);
      clock.advance(SECOND);
      sandbox.idp.revokeAccount('refused-for-good');
      expect(await rejection(stack.accessTokens.accessToken('refused-for-good', 60, { forceRefresh: true }))).toBeInstanceOf(
        ReauthRequiredError,
      );
    });
  });

  it('asked again and again for the whole life of a fresh token, refreshes once, not on every call', async () => {
    const { accessToken } = await connected('greedy', 30 * MINUTE);
    clock.advance(SECOND);
    const first = await stack.accessTokens.accessToken('greedy', 3600);
    expect(first.accessToken).not.toBe(accessToken);
    clock.advance(SECOND);
    expect(await stack.accessTokens.accessToken('greedy', 3600)).toEqual(first);
    expect(sandbox.idp.stats()).toMatchObject({ refreshes: 1 });
  });

  describe('when Atlassian fails', () => {
    it('hands out the stored token while it still works, even if shorter than asked', async () => {
      const { id, accessToken } = await connected('degraded', 5 * MINUTE);
      sandbox.idp.addFault({ count: 1, endpoint: 'token', status: 503 });
      expect(await stack.accessTokens.accessToken('degraded', 600)).toMatchObject({ accessToken });
      expect(await readConnection(db.dataSource, stack.cipher, id)).toMatchObject({ status: 'refresh_failing', consecutiveFailures: 1 });
    });

    it('answers 503 atlassian_unavailable with Retry-After when no valid token is left, and respects the backoff', async () => {
      const { id } = await connected('expired', -MINUTE);
      sandbox.idp.addFault({ count: 1, endpoint: 'token', status: 429, retryAfterSeconds: 30 });
      expect(await rejection(stack.accessTokens.accessToken('expired', 60))).toMatchObject({
        code: 'atlassian_unavailable',
        headers: { 'Retry-After': '30' },
      });
      const calls = sandbox.idp.stats().tokenCalls.refresh_token;

      clock.advance(10 * SECOND);
      expect(await rejection(stack.accessTokens.accessToken('expired', 60))).toMatchObject({
        code: 'atlassian_unavailable',
        headers: { 'Retry-After': '20' },
      });
      expect(sandbox.idp.stats().tokenCalls.refresh_token).toBe(calls);

      clock.advance(20 * SECOND);
      const answer = await stack.accessTokens.accessToken('expired', 60);
      expect(await readConnection(db.dataSource, stack.cipher, id)).toMatchObject({ status: 'active', accessToken: answer.accessToken });
    });

    it('answers 409 when the refresh finds the grant revoked, and marks the connection', async () => {
      const { id } = await connected('revoked', 0);
      sandbox.idp.revokeAccount('revoked');
      expect(await rejection(stack.accessTokens.accessToken('revoked', 60))).toBeInstanceOf(ReauthRequiredError);
      expect((await readConnection(db.dataSource, stack.cipher, id)).status).toBe('reauth_required');
      expect(await rejection(stack.accessTokens.accessToken('revoked', 60))).toMatchObject({ code: 'reauth_required', status: 409 });
    });

    it('answers 503 configuration_error while Atlassian refuses the client credentials', async () => {
      const wrong = refreshConfig(sandbox.url, { ATLASSIAN_CLIENT_ID: 'sandbox-client-id', ATLASSIAN_CLIENT_SECRET: 'wrong' });
      const misconfigured = await refreshStack({ config: wrong, clock, dataSource: db.dataSource });
      try {
        const { id } = await connected('stuck', 0);
        const before = await readConnection(db.dataSource, stack.cipher, id);
        expect(await rejection(misconfigured.accessTokens.accessToken('stuck', 60))).toMatchObject({
          code: 'configuration_error',
          status: 503,
        });
        expect(await readConnection(db.dataSource, stack.cipher, id)).toEqual(before);
      } finally {
        await misconfigured.close();
      }
    });
  });

  it('answers 404 for an unknown user', async () => {
    expect(await rejection(stack.accessTokens.accessToken('nobody', 60))).toBeInstanceOf(ConnectionNotFoundError);
  });
});
