import { afterAll, beforeAll, beforeEach, expect, it } from '@jest/globals';
import { DataSource } from 'typeorm';
import { ConnectionCache, LISTENER_NAME } from '../../src/connection-store/connection-cache.js';
import { TokenCipher } from '../../src/crypto/token-cipher.js';
import { callApi, errorOf, userPath } from '../utils/api.js';
import type { TestApp } from '../utils/app.js';
import { ManualClock, storeRevokedAccessToken } from '../utils/connections.js';
import { describePostgres } from '../utils/database.js';
import { eventually } from '../utils/eventually.js';
import { startReplicas, type Replicas } from '../utils/replicas.js';
import { connectUser } from './connect-browser.js';

/**
 * Product calls read the user's token and sites from ConnectionCache, and every change to them, made anywhere, is
 * heard: two replicas on one database, as deployed behind a balancer, the first one's sandbox playing Atlassian.
 */
describePostgres('the connection cache behind product calls', () => {
  const clock = new ManualClock();
  let replicas: Replicas;
  let first: TestApp;
  let second: TestApp;
  let dataSource: DataSource;
  let cache: ConnectionCache;
  const sites = new Map<string, string>();
  const users = [
    ['cached-alice', 'alice'],
    ['cached-bob', 'bob'],
    ['cached-frank', 'frank'],
    ['cached-dave', 'dave'],
    ['cached-erin', 'erin'],
  ] as const;

  beforeAll(async () => {
    replicas = await startReplicas(clock);
    ({ first, second } = replicas);
    dataSource = first.app.get(DataSource);
    cache = first.app.get(ConnectionCache);
    for (const [userId, login] of users) {
      expect((await connectUser(first, userId, login)).response.status).toBe(200);
      const [{ cloud_id }]: { cloud_id: string }[] = await dataSource.query(
        `SELECT r.cloud_id FROM accessible_resources r JOIN connections c ON c.id = r.connection_id WHERE c.user_id = $1 LIMIT 1`,
        [userId],
      );
      sites.set(userId, cloud_id);
    }
  });
  afterAll(() => replicas?.close());

  let callsBefore = 0;
  beforeEach(async () => {
    // Every test starts with each user's token and site remembered by the first replica (the first call of all starts
    // its listening, and is not remembered).
    for (const [userId] of users) await callApi(first, 'GET', myself(userId));
    await cache.caughtUp();
    for (const [userId] of users) expect((await callApi(first, 'GET', myself(userId))).status).toBe(200);
    callsBefore = (await replicas.apiCalls()).length;
  });

  const myself = (userId: string) => userPath(userId, `/proxy/jira/${sites.get(userId)!}/rest/api/3/myself`);

  async function callsSince(): Promise<number[]> {
    return (await replicas.apiCalls()).slice(callsBefore).map((call) => call.status);
  }

  async function storeDeadToken(userId: string): Promise<void> {
    const [{ id }]: { id: string }[] = await dataSource.query(`SELECT id FROM connections WHERE user_id = $1`, [userId]);
    await storeRevokedAccessToken(dataSource, first.app.get(TokenCipher), id);
  }

  async function listeningGauge(): Promise<string | undefined> {
    const text = await (await fetch(`${first.baseUrl}/metrics`)).text();
    return /^atlassian_connection_cache_listening (\S+)$/m.exec(text)?.[1];
  }

  /** Runs `write` with the notifying triggers off, as if the change had not been heard. */
  async function unheard(write: () => Promise<void>): Promise<void> {
    await dataSource.query(`ALTER TABLE connections DISABLE TRIGGER USER`);
    try {
      await write();
    } finally {
      await dataSource.query(`ALTER TABLE connections ENABLE TRIGGER USER`);
    }
  }

  it('serves a repeated call with the token it read before, without reading the database again', async () => {
    await unheard(() => storeDeadToken('cached-alice'));
    expect((await callApi(first, 'GET', myself('cached-alice'))).status).toBe(200);
    // The remembered token went out, not the dead one stored since: no 401, no retry.
    expect(await callsSince()).toEqual([200]);
  });

  it('reads a token stored by hand on the next call once the change is heard', async () => {
    await storeDeadToken('cached-bob');
    await cache.caughtUp();
    expect((await callApi(first, 'GET', myself('cached-bob'))).status).toBe(200);
    expect(await callsSince()).toEqual([401, 200]);
  });

  it("answers 404 connection_not_found at once after another replica deleted the user's connection", async () => {
    expect((await callApi(second, 'DELETE', userPath('cached-frank', '/connection'))).status).toBe(204);
    await cache.caughtUp();
    expect(await errorOf(await callApi(first, 'GET', myself('cached-frank')))).toEqual([404, 'connection_not_found']);
    expect(await callsSince()).toEqual([]);
    expect((await connectUser(first, 'cached-frank', 'frank')).response.status).toBe(200);
  });

  it('answers 404 site_not_found once a site is removed, and 409 once re-consent is required, however they were written', async () => {
    await dataSource.query(
      `DELETE FROM accessible_resources r USING connections c WHERE r.connection_id = c.id AND c.user_id = 'cached-dave' AND r.cloud_id = $1`,
      [sites.get('cached-dave')],
    );
    await dataSource.query(`UPDATE connections SET status = 'reauth_required' WHERE user_id = 'cached-erin'`);
    await cache.caughtUp();
    expect(await errorOf(await callApi(first, 'GET', myself('cached-dave')))).toEqual([404, 'site_not_found']);
    expect(await errorOf(await callApi(first, 'GET', myself('cached-erin')))).toEqual([409, 'reauth_required']);
    expect(await callsSince()).toEqual([]);
    for (const [userId, login] of [
      ['cached-dave', 'dave'],
      ['cached-erin', 'erin'],
    ]) {
      expect((await connectUser(first, userId, login)).response.status).toBe(200);
    }
  });

  it("forgets this replica's own change as soon as it commits, before any notification", async () => {
    await unheard(async () => {
      expect((await callApi(first, 'DELETE', userPath('cached-frank', '/connection'))).status).toBe(204);
    });
    expect(await errorOf(await callApi(first, 'GET', myself('cached-frank')))).toEqual([404, 'connection_not_found']);
    expect((await connectUser(first, 'cached-frank', 'frank')).response.status).toBe(200);
  });

  it('reads the database for every call while it cannot hear changes, and remembers again once it can', async () => {
    await dataSource.query(
      `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1 AND datname = current_database()`,
      [LISTENER_NAME],
    );
    await eventually(
      () => cache.token('cached-alice'),
      (state) => state === undefined,
    );
    expect(await listeningGauge()).toBe('0');
    await unheard(() => storeDeadToken('cached-bob'));
    expect((await callApi(first, 'GET', myself('cached-bob'))).status).toBe(200);
    expect(await callsSince()).toEqual([401, 200]);
    // Listening again (after a pause), the next calls are remembered.
    await eventually(
      async () => {
        await callApi(first, 'GET', myself('cached-bob'));
        await cache.caughtUp();
        return cache.token('cached-bob');
      },
      (state) => state !== undefined,
    );
    expect(await listeningGauge()).toBe('1');
  });

  it('does not remember a read that started before a change it has heard of', () => {
    const state = cache.token('cached-alice')!;
    expect(state).toBeDefined();
    const ticket = cache.ticket();
    cache.forget('cached-alice');
    cache.rememberToken(ticket, 'cached-alice', state);
    expect(cache.token('cached-alice')).toBeUndefined();
    cache.rememberToken(cache.ticket(), 'cached-alice', state);
    expect(cache.token('cached-alice')).toBe(state);
  });
});
