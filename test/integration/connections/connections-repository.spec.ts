import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import type { AccessibleResource } from '../../../src/atlassian/atlassian.types.js';
import type { Clock } from '../../../src/common/clock.js';
import { loadConfig } from '../../../src/config/app-config.js';
import { ConnectionsRepository } from '../../../src/connection-store/connections.repository.js';
import { ConnectionsService } from '../../../src/connections/connections.service.js';
import { TokenCipher } from '../../../src/crypto/token-cipher.js';
import { LifecycleService } from '../../../src/lifecycle/lifecycle.service.js';
import { JiraWebhooksRepository } from '../../../src/jira-webhooks/jira-webhooks.repository.js';
import { OutboxRepository } from '../../../src/webhooks/outbox.repository.js';
import { drivers, openMigratedDatabase, type OpenedDatabase } from '../../utils/database.js';
import { cacheOff } from '../../utils/connection-cache.js';

const T0 = new Date('2026-03-02T09:00:00.000Z');

function site(id: string, name: string, scopes = ['read:jira-work']): AccessibleResource {
  return { id, name, url: `https://${name}.atlassian.net`, scopes, avatarUrl: null };
}

describe.each(drivers)('ConnectionsRepository reads and deletes on %s', (driver) => {
  let db: OpenedDatabase;
  let repository: ConnectionsRepository;
  const clock: Clock = { now: () => T0 };

  beforeAll(async () => {
    db = await openMigratedDatabase(driver);
    repository = new ConnectionsRepository(db.dataSource, new OutboxRepository(), cacheOff());
  });
  afterAll(() => db?.close());
  beforeEach(() => db.dataSource.query(`TRUNCATE connections, webhook_outbox CASCADE`));

  async function connect(userId: string, resources: AccessibleResource[] = []): Promise<string> {
    const config = loadConfig({ TOKEN_ENCRYPTION_KEYS: `k1:${randomBytes(32).toString('base64')}` });
    const service = new ConnectionsService(
      repository,
      new TokenCipher(config),
      clock,
      config,
      new LifecycleService(db.dataSource, new ConnectionsRepository(db.dataSource, new OutboxRepository(), cacheOff()), config, clock),
      new JiraWebhooksRepository(db.dataSource),
    );
    const stored = await service.storeConnected({
      userId,
      atlassianAccountId: `712020:${userId}`,
      accessToken: 'at',
      refreshToken: 'rt',
      expiresInSeconds: 3600,
      scopes: ['read:jira-work', 'offline_access'],
      resources,
    });
    return stored.id;
  }

  it('finds a summary without any token column, and nothing for an unknown user', async () => {
    await connect('u-1');
    expect(await repository.findSummary(db.dataSource.manager, 'u-1')).toEqual({
      userId: 'u-1',
      status: 'active',
      atlassianAccountId: '712020:u-1',
      scopes: ['read:jira-work', 'offline_access'],
      missingScopes: ['read:me'],
      accessTokenExpiresAt: new Date(T0.getTime() + 3_600_000),
      lastRefreshedAt: T0,
      lastError: null,
      consentedAt: T0,
    });
    expect(await repository.findSummary(db.dataSource.manager, 'nobody')).toBeUndefined();
  });

  it('pages in user_id order after a position, one row beyond the limit, with or without a status', async () => {
    for (const userId of ['d', 'a', 'c', 'b', 'e']) await connect(userId);
    await db.dataSource.query(`UPDATE connections SET status = 'refresh_failing' WHERE user_id IN ('b', 'd', 'e')`);
    const ids = async (page: Parameters<ConnectionsRepository['findPage']>[1]) =>
      (await repository.findPage(db.dataSource.manager, page)).map((row) => row.userId);
    expect(await ids({ limit: 2 })).toEqual(['a', 'b', 'c']);
    expect(await ids({ limit: 2, afterUserId: 'c' })).toEqual(['d', 'e']);
    expect(await ids({ limit: 2, status: 'refresh_failing' })).toEqual(['b', 'd', 'e']);
    expect(await ids({ limit: 2, status: 'refresh_failing', afterUserId: 'b' })).toEqual(['d', 'e']);
    expect(await ids({ limit: 5, status: 'reauth_required' })).toEqual([]);
  });

  it('reads the stored sites of several users at once as the API shows them, merged and ordered by name', async () => {
    await connect('sites-user', [site('c-2', 'umbrella'), site('c-1', 'acme', ['read:jira-work', 'read:confluence-content.all'])]);
    await connect('no-sites');
    const found = await repository.findResources(db.dataSource.manager, ['sites-user', 'no-sites', 'nobody']);
    expect(found.get('sites-user')).toEqual({
      status: 'active',
      fetchedAt: T0,
      resources: [
        {
          id: 'c-1',
          url: 'https://acme.atlassian.net',
          name: 'acme',
          scopes: ['read:jira-work', 'read:confluence-content.all'],
          avatarUrl: null,
        },
        { id: 'c-2', url: 'https://umbrella.atlassian.net', name: 'umbrella', scopes: ['read:jira-work'], avatarUrl: null },
      ],
    });
    expect(found.get('no-sites')?.resources).toEqual([]);
    expect(found.has('nobody')).toBe(false);
    expect([...found.keys()].sort()).toEqual(['no-sites', 'sites-user']);
  });

  it('replaces the sites under the lock, keeps their history and the time they were read', async () => {
    await connect('changing', [site('c-1', 'acme'), site('c-2', 'umbrella')]);
    const later = new Date(T0.getTime() + 60_000);
    const result = await repository.storeFetchedResources('changing', [site('c-2', 'umbrella'), site('c-3', 'initech')], T0, later);
    expect(result?.changes).toEqual({ added: ['c-3'], removed: ['c-1'] });
    expect(result?.stored).toEqual((await repository.findResources(db.dataSource.manager, ['changing'])).get('changing'));
    const stored = (await repository.findResources(db.dataSource.manager, ['changing'])).get('changing');
    expect(stored?.fetchedAt).toEqual(later);
    expect(stored?.resources.map((r) => r.id)).toEqual(['c-3', 'c-2']);
    expect(await db.dataSource.query(`SELECT cloud_id, change, at FROM accessible_resource_changes ORDER BY cloud_id`)).toEqual([
      { cloud_id: 'c-1', change: 'removed', at: later },
      { cloud_id: 'c-3', change: 'added', at: later },
    ]);

    // A read asked before the stored one was stored keeps the newer set.
    const stale = await repository.storeFetchedResources('changing', [site('c-9', 'stale')], T0, new Date(later.getTime() + 1000));
    expect(stale).toEqual({ stored, changes: { added: [], removed: [] } });
    expect(await repository.storeFetchedResources('nobody', [], T0, later)).toBeUndefined();
  });

  it('tells whether a site is one of the user’s', async () => {
    await connect('owner', [site('c-1', 'acme')]);
    expect(
      await repository.findSiteAccess(db.dataSource.manager, [
        { userId: 'owner', cloudId: 'c-1' },
        { userId: 'nobody', cloudId: 'c-1' },
        { userId: 'owner', cloudId: 'c-9' },
        { userId: 'owner', cloudId: 'c-1' },
      ]),
    ).toEqual([{ status: 'active', hasSite: true }, undefined, { status: 'active', hasSite: false }, { status: 'active', hasSite: true }]);
  });

  it('deletes a connection with its sites and their history, and writes connection.deleted with it', async () => {
    await connect('leaving', [site('c-1', 'acme')]);
    await repository.storeFetchedResources('leaving', [site('c-2', 'initech')], T0, T0);
    await db.dataSource.query(`TRUNCATE webhook_outbox`);
    expect(await repository.deleteByUserId('leaving', T0)).toBe(true);
    for (const table of ['connections', 'accessible_resources', 'accessible_resource_changes']) {
      expect(await db.dataSource.query(`SELECT count(*)::int AS n FROM ${table}`)).toEqual([{ n: 0 }]);
    }
    const [event]: { type: string; body: string }[] = await db.dataSource.query(`SELECT type, body FROM webhook_outbox`);
    expect(event.type).toBe('connection.deleted');
    expect(JSON.parse(event.body)).toMatchObject({ userId: 'leaving', atlassianAccountId: '712020:leaving' });
    expect(await repository.deleteByUserId('leaving', T0)).toBe(false);
    expect(await db.dataSource.query(`SELECT count(*)::int AS n FROM webhook_outbox`)).toEqual([{ n: 1 }]);
  });
});
