import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { DataSource } from 'typeorm';
import { TokenCipher } from '../../src/crypto/token-cipher.js';
import { RefreshService } from '../../src/refresh/refresh.service.js';
import { callApi, errorOf, userPath } from '../utils/api.js';
import { startTestApp, type TestApp } from '../utils/app.js';
import { ManualClock, SandboxTokenEndpoint, seedConnection } from '../utils/connections.js';
import { createTestDatabase, describePostgres, type TestDatabase } from '../utils/database.js';

const MINUTE = 60_000;
const OLD_KEY = `k1:${randomBytes(32).toString('base64')}`;
const NEW_KEY = `k2:${randomBytes(32).toString('base64')}`;

/** What must not change while a replica cannot open a connection's tokens. */
const UNTOUCHED = `SELECT status, version, last_error, consecutive_failures, refresh_attempted_at, lease_id,
  access_token_ciphertext, access_token_key_id, refresh_token_ciphertext, refresh_token_key_id, access_token_expires_at
  FROM connections WHERE id = $1`;

/**
 * A key rotation rolled out in the wrong order: one replica already seals with a new key that the other does not
 * have yet. The replica without the key fails each request it cannot serve, loudly, and leaves the connection as it is.
 */
describePostgres('two replicas with different keyrings', () => {
  const clock = new ManualClock();
  let database: TestDatabase;
  let sandbox: SandboxTokenEndpoint;
  let rotated: TestApp;
  let lagging: TestApp;
  let dataSource: DataSource;

  beforeAll(async () => {
    database = await createTestDatabase();
    sandbox = await new SandboxTokenEndpoint(clock).start();
    // The daemon's own timer stays out of the way: the test runs the refresh cycles itself.
    const env = { ATLASSIAN_AUTH_URL: sandbox.url, REFRESH_INTERVAL_SECONDS: '3600' };
    // Created first: Nest's process-wide logger is the first app's, and this one's log is the one read back.
    lagging = await startTestApp({
      clock,
      databaseUrl: database.url,
      captureLogs: true,
      env: { ...env, TOKEN_ENCRYPTION_KEYS: OLD_KEY, LOG_LEVEL: 'info' },
    });
    rotated = await startTestApp({ clock, databaseUrl: database.url, env: { ...env, TOKEN_ENCRYPTION_KEYS: `${NEW_KEY},${OLD_KEY}` } });
    dataSource = rotated.app.get(DataSource);
  }, 60_000);
  afterAll(async () => {
    await lagging?.close();
    await rotated?.close();
    await sandbox?.close();
    await database?.drop();
  }, 30_000);

  async function untouched(id: string): Promise<Record<string, unknown>> {
    const [row] = await dataSource.query<Record<string, unknown>[]>(UNTOUCHED, [id]);
    return row;
  }

  async function decryptionFailures(app: TestApp): Promise<number> {
    const text = await (await fetch(`${app.baseUrl}/metrics`)).text();
    const line = text.split('\n').find((l) => l.startsWith('atlassian_token_decryption_failures_total{reason="unknown_key"}'));
    return Number(line?.split(' ')[1]);
  }

  it('fails the one request with 503 token_decryption_failed, counts and logs it, and never marks or rewrites the connection', async () => {
    const pair = await sandbox.connect('rotating');
    // Sealed by the replica that has the new key, as its refresh would.
    const id = await seedConnection(dataSource, rotated.app.get(TokenCipher), clock, {
      userId: 'rotating',
      atlassianAccountId: pair.accountId,
      accessToken: pair.accessToken,
      refreshToken: pair.refreshToken,
      accessTokenExpiresAt: new Date(clock.now().getTime() + 30 * MINUTE),
    });
    const before = await untouched(id);
    expect(before).toMatchObject({ access_token_key_id: 'k2', refresh_token_key_id: 'k2', status: 'active' });

    // The access token is valid: the lagging replica cannot open it.
    const reveal = await callApi(lagging, 'POST', userPath('rotating', '/access-token'));
    expect(reveal.headers.get('retry-after')).toBe('5');
    expect(await errorOf(reveal)).toEqual([503, 'token_decryption_failed']);
    expect(await decryptionFailures(lagging)).toBe(1);

    // Due now: the lagging replica's daemon claims it and hands it back untouched, due again a minute later.
    await dataSource.query(`UPDATE connections SET due_at = $2 WHERE id = $1`, [id, new Date(clock.now().getTime() - 1000)]);
    const cycle = await lagging.app.get(RefreshService).runDueRefreshes();
    expect(cycle).toMatchObject({ claimed: 1, released: 1, failing: 0, errors: 0 });
    expect(await untouched(id)).toEqual(before);
    const [{ due_at: dueAt }] = await dataSource.query<{ due_at: Date }[]>(`SELECT due_at FROM connections WHERE id = $1`, [id]);
    expect(dueAt.getTime()).toBe(clock.now().getTime() + MINUTE);
    expect(await decryptionFailures(lagging)).toBe(2);

    // Expired: an on-demand refresh there cannot open the refresh token either; nothing is presented to Atlassian.
    clock.advance(31 * MINUTE);
    const onDemand = await callApi(lagging, 'POST', userPath('rotating', '/access-token'));
    expect(await errorOf(onDemand)).toEqual([503, 'token_decryption_failed']);
    expect(await untouched(id)).toEqual(before);
    expect(sandbox.idp.stats().tokenCalls.refresh_token).toBe(0);
    expect(await decryptionFailures(lagging)).toBe(3);

    const errors = lagging
      .logLines()
      .filter((line) => line.level === 50 && String(line.msg).includes('cannot be decrypted on this replica'));
    expect(errors.length).toBe(3);
    expect(lagging.logs()).not.toContain(pair.accessToken);
    expect(lagging.logs()).not.toContain(pair.refreshToken);

    // The connection was never broken: the replica with the key refreshes it.
    const served = await callApi(rotated, 'POST', userPath('rotating', '/access-token'));
    expect(served.status).toBe(200);
    expect(await untouched(id)).toMatchObject({ status: 'active', version: 2, last_error: null });
  }, 60_000);
});
