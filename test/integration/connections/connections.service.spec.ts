import { randomBytes } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import type { AccessibleResource } from '../../../src/atlassian/atlassian.types.js';
import type { Clock } from '../../../src/common/clock.js';
import { loadConfig } from '../../../src/config/app-config.js';
import { ConnectionsRepository } from '../../../src/connection-store/connections.repository.js';
import { ConnectionsService, type NewConnection } from '../../../src/connections/connections.service.js';
import { TokenCipher } from '../../../src/crypto/token-cipher.js';
import { LifecycleService } from '../../../src/lifecycle/lifecycle.service.js';
import { JiraWebhooksRepository } from '../../../src/jira-webhooks/jira-webhooks.repository.js';
import { nextRefreshAt } from '../../../src/refresh/refresh.policy.js';
import { OutboxRepository } from '../../../src/webhooks/outbox.repository.js';
import { describePostgres, drivers, openMigratedDatabase, type OpenedDatabase } from '../../utils/database.js';
import { cacheOff } from '../../utils/connection-cache.js';

const T0 = new Date('2026-03-02T09:00:00.000Z');

function site(id: string, name: string, scopes = ['read:jira-work']): AccessibleResource {
  return { id, name, url: `https://${name}.atlassian.net`, scopes, avatarUrl: null };
}

function consent(userId: string, overrides: Partial<NewConnection> = {}): NewConnection {
  return {
    userId,
    atlassianAccountId: '712020:account-a',
    accessToken: `at-${randomBytes(8).toString('hex')}`,
    refreshToken: `rt-${randomBytes(8).toString('hex')}`,
    expiresInSeconds: 3600,
    scopes: ['read:jira-work', 'offline_access', 'read:me'],
    resources: [site('cloud-1', 'acme'), site('cloud-2', 'umbrella')],
    ...overrides,
  };
}

function setup(db: OpenedDatabase) {
  let now = T0;
  const clock: Clock = { now: () => now };
  const config = loadConfig({ TOKEN_ENCRYPTION_KEYS: `k1:${randomBytes(32).toString('base64')}`, REFRESH_LEAD_SECONDS: '600' });
  const cipher = new TokenCipher(config);
  const service = new ConnectionsService(
    new ConnectionsRepository(db.dataSource, new OutboxRepository(), cacheOff()),
    cipher,
    clock,
    config,
    new LifecycleService(db.dataSource, new ConnectionsRepository(db.dataSource, new OutboxRepository(), cacheOff()), config, clock),
    new JiraWebhooksRepository(db.dataSource),
  );
  const row = async (userId: string): Promise<Record<string, unknown>> =>
    (await db.dataSource.query<Record<string, unknown>[]>(`SELECT * FROM connections WHERE user_id = $1`, [userId]))[0];
  const sites = async (connectionId: string): Promise<Record<string, unknown>[]> =>
    db.dataSource.query(
      `SELECT cloud_id, name, scopes, first_seen_at FROM accessible_resources WHERE connection_id = $1 ORDER BY cloud_id`,
      [connectionId],
    );
  const open = (stored: Record<string, unknown>, column: 'access_token' | 'refresh_token') =>
    cipher.open(
      { ciphertext: stored[`${column}_ciphertext`] as string, keyId: stored[`${column}_key_id`] as string },
      { table: 'connections', rowId: stored.id as string, column },
    );
  return { service, config, row, sites, open, setNow: (at: Date) => (now = at) };
}

describe.each(drivers)('ConnectionsService.storeConnected on %s', (driver) => {
  let db: OpenedDatabase;

  beforeEach(async () => {
    db = await openMigratedDatabase(driver);
  });
  afterEach(() => db?.close());

  it('stores a new connection as the refresh daemon expects it, with its sites and its webhook', async () => {
    const { service, row, sites, open } = setup(db);
    const input = consent('user-1');
    const stored = await service.storeConnected(input);
    expect(stored).toEqual({ id: expect.any(String), version: 1, replaced: false });

    const connection = await row('user-1');
    expect(connection).toMatchObject({
      id: stored.id,
      status: 'active',
      atlassian_account_id: '712020:account-a',
      scopes: ['read:jira-work', 'offline_access', 'read:me'],
      access_token_key_id: 'k1',
      refresh_token_key_id: 'k1',
      access_token_expires_at: new Date('2026-03-02T10:00:00.000Z'),
      refresh_token_issued_at: T0,
      last_refreshed_at: T0,
      version: 1,
      due_at: new Date('2026-03-02T09:50:00.000Z'),
      lease_id: null,
      lease_owner: null,
      lease_expires_at: null,
      refresh_attempted_at: null,
      consecutive_failures: 0,
      last_error: null,
      resources_fetched_at: T0,
      updated_at: T0,
    });
    expect(open(connection, 'access_token')).toBe(input.accessToken);
    expect(open(connection, 'refresh_token')).toBe(input.refreshToken);
    expect(connection.access_token_ciphertext).not.toContain(input.accessToken);

    expect(await sites(stored.id)).toEqual([
      { cloud_id: 'cloud-1', name: 'acme', scopes: ['read:jira-work'], first_seen_at: T0 },
      { cloud_id: 'cloud-2', name: 'umbrella', scopes: ['read:jira-work'], first_seen_at: T0 },
    ]);
    const events: { type: string; user_id: string; body: string }[] = await db.dataSource.query(
      `SELECT type, user_id, body FROM webhook_outbox`,
    );
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ type: 'connection.created', user_id: 'user-1' });
    expect(JSON.parse(events[0].body)).toEqual({
      id: expect.any(String),
      type: 'connection.created',
      userId: 'user-1',
      at: T0.toISOString(),
      atlassianAccountId: '712020:account-a',
      siteCount: 2,
    });
    expect(events[0].body).not.toContain(input.accessToken);
  });

  it.each([3600, 300, 20])(
    'schedules the first refresh of a %i s token by the refresh policy, as a refresh would',
    async (expiresInSeconds) => {
      const { service, config, row } = setup(db);
      await service.storeConnected(consent('due-by-policy', { expiresInSeconds }));
      const expected = nextRefreshAt({
        now: T0,
        accessTokenExpiresAt: new Date(T0.getTime() + expiresInSeconds * 1000),
        refreshTokenIssuedAt: T0,
        leadSeconds: config.refresh.leadSeconds,
      });
      expect((await row('due-by-policy')).due_at).toEqual(expected);
      expect(expected.getTime()).toBeGreaterThan(T0.getTime());
    },
  );

  it('replaces tokens, account and sites on reconnect, keeping the row, its id and the first-seen time of known sites', async () => {
    const { service, row, sites, open, setNow } = setup(db);
    const first = await service.storeConnected(consent('user-1'));
    await db.dataSource.query(
      `UPDATE connections SET status = 'reauth_required', lease_id = gen_random_uuid(), lease_owner = 'w1', lease_expires_at = now(),
         refresh_attempted_at = now(), consecutive_failures = 4, last_error = 'invalid_grant', last_error_at = now() WHERE id = $1`,
      [first.id],
    );
    const later = new Date('2026-03-03T09:00:00.000Z');
    setNow(later);
    const input = consent('user-1', {
      atlassianAccountId: '712020:account-b',
      resources: [site('cloud-2', 'umbrella-renamed', ['read:jira-work', 'write:jira-work']), site('cloud-3', 'initech')],
    });
    const second = await service.storeConnected(input);
    expect(second).toEqual({ id: first.id, version: 2, replaced: true });

    const connection = await row('user-1');
    expect(connection).toMatchObject({
      status: 'active',
      atlassian_account_id: '712020:account-b',
      version: 2,
      lease_id: null,
      lease_owner: null,
      lease_expires_at: null,
      refresh_attempted_at: null,
      consecutive_failures: 0,
      last_error: null,
      last_error_at: null,
      last_refreshed_at: later,
      due_at: new Date('2026-03-03T09:50:00.000Z'),
    });
    expect(open(connection, 'refresh_token')).toBe(input.refreshToken);
    expect(await sites(first.id)).toEqual([
      { cloud_id: 'cloud-2', name: 'umbrella-renamed', scopes: ['read:jira-work', 'write:jira-work'], first_seen_at: T0 },
      { cloud_id: 'cloud-3', name: 'initech', scopes: ['read:jira-work'], first_seen_at: later },
    ]);
    const events: { type: string }[] = await db.dataSource.query(`SELECT type FROM webhook_outbox`);
    expect(events.map((e) => e.type)).toEqual(['connection.created', 'connection.created']);
  });

  it('keeps the connections of two users of one Atlassian account apart', async () => {
    const { service, row } = setup(db);
    const a = await service.storeConnected(consent('user-a'));
    const b = await service.storeConnected(consent('user-b'));
    expect(a.id).not.toBe(b.id);
    expect((await row('user-a')).atlassian_account_id).toBe((await row('user-b')).atlassian_account_id);
  });

  it('stores a connection without sites', async () => {
    const { service, sites } = setup(db);
    const stored = await service.storeConnected(consent('no-sites', { resources: [] }));
    expect(await sites(stored.id)).toEqual([]);
  });
});

describePostgres('ConnectionsService.storeConnected for one user from two callbacks at once', () => {
  it('ends with one connection whose tokens open under its own id', async () => {
    const db = await openMigratedDatabase('postgres');
    try {
      const { service, row, open } = setup(db);
      const inputs = [consent('racer'), consent('racer')];
      const results = await Promise.all(inputs.map((input) => service.storeConnected(input)));
      expect(new Set(results.map((r) => r.id)).size).toBe(1);
      expect(results.map((r) => r.version).sort()).toEqual([1, 2]);
      const connection = await row('racer');
      expect(inputs.map((i) => i.refreshToken)).toContain(open(connection, 'refresh_token'));
      const count: { n: string }[] = await db.dataSource.query(`SELECT count(*)::text AS n FROM connections WHERE user_id = 'racer'`);
      expect(count[0].n).toBe('1');
    } finally {
      await db.close();
    }
  });
});
