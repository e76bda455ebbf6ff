import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import type { AtlassianApi } from '../../../src/product-calls/atlassian-api.service.js';
import type { AccessibleResource } from '../../../src/atlassian/atlassian.types.js';
import { loadConfig } from '../../../src/config/app-config.js';
import { AccessibleResourcesService } from '../../../src/connections/accessible-resources.service.js';
import { ConnectionsRepository } from '../../../src/connection-store/connections.repository.js';
import { ConnectionsService, type NewConnection } from '../../../src/connections/connections.service.js';
import { TokenCipher } from '../../../src/crypto/token-cipher.js';
import { LifecycleService } from '../../../src/lifecycle/lifecycle.service.js';
import { JiraWebhooksRepository } from '../../../src/jira-webhooks/jira-webhooks.repository.js';
import { OutboxRepository } from '../../../src/webhooks/outbox.repository.js';
import { ManualClock } from '../../utils/connections.js';
import { drivers, openMigratedDatabase, type OpenedDatabase } from '../../utils/database.js';
import { cacheOff } from '../../utils/connection-cache.js';

function site(id: string, name: string): AccessibleResource {
  return { id, name, url: `https://${name}.atlassian.net`, scopes: ['read:jira-work'], avatarUrl: null };
}

function consent(userId: string, resources: AccessibleResource[]): NewConnection {
  return {
    userId,
    atlassianAccountId: `712020:${userId}`,
    accessToken: 'at',
    refreshToken: 'rt',
    expiresInSeconds: 3600,
    scopes: ['read:jira-work'],
    resources,
  };
}

describe.each(drivers)('AccessibleResourcesService on %s', (driver) => {
  let db: OpenedDatabase;
  const clock = new ManualClock();
  let repository: ConnectionsRepository;
  let connections: ConnectionsService;
  /** What the fake Atlassian lists next, and what happens while it is being asked. */
  let listed: AccessibleResource[] = [];
  let whileAsking: () => Promise<void> = () => Promise.resolve();

  const atlassian = {
    accessibleResources: async () => {
      await whileAsking();
      return listed;
    },
  } as unknown as AtlassianApi;

  beforeAll(async () => {
    db = await openMigratedDatabase(driver);
    repository = new ConnectionsRepository(db.dataSource, new OutboxRepository(), cacheOff());
    const config = loadConfig({ TOKEN_ENCRYPTION_KEYS: `k1:${randomBytes(32).toString('base64')}` });
    connections = new ConnectionsService(
      repository,
      new TokenCipher(config),
      clock,
      config,
      new LifecycleService(db.dataSource, new ConnectionsRepository(db.dataSource, new OutboxRepository(), cacheOff()), config, clock),
      new JiraWebhooksRepository(db.dataSource),
    );
  });
  afterAll(() => db?.close());
  beforeEach(async () => {
    await db.dataSource.query(`TRUNCATE connections, webhook_outbox CASCADE`);
    whileAsking = () => Promise.resolve();
  });

  function service(): AccessibleResourcesService {
    return new AccessibleResourcesService(repository, atlassian, clock, cacheOff());
  }

  it('replaces the stored sites with what Atlassian lists and answers the difference', async () => {
    await connections.storeConnected(consent('u1', [site('c-1', 'acme'), site('c-2', 'umbrella')]));
    listed = [site('c-2', 'umbrella'), site('c-3', 'initech')];
    clock.advance(60_000);
    const answer = await service().read('u1', { refresh: true });
    expect(answer).toEqual({
      userId: 'u1',
      resources: [site('c-3', 'initech'), site('c-2', 'umbrella')],
      fetchedAt: clock.now().toISOString(),
      changes: { added: ['c-3'], removed: ['c-1'] },
    });
    expect(await service().read('u1', { refresh: false })).toEqual({
      userId: 'u1',
      resources: answer.resources,
      fetchedAt: answer.fetchedAt,
    });
  });

  it('keeps the sites of a reconnect that was stored while Atlassian was being asked', async () => {
    await connections.storeConnected(consent('u2', [site('c-1', 'acme')]));
    listed = [site('c-9', 'stale')];
    whileAsking = async () => {
      clock.advance(1_000);
      await connections.storeConnected(consent('u2', [site('c-5', 'fresh')]));
    };
    const answer = await service().read('u2', { refresh: true });
    expect(answer.resources.map((r) => r.id)).toEqual(['c-5']);
    expect(answer.changes).toEqual({ added: [], removed: [] });
    expect(await db.dataSource.query(`SELECT * FROM accessible_resource_changes`)).toEqual([]);
  });

  it('answers connection_not_found when the connection was deleted while Atlassian was being asked', async () => {
    await connections.storeConnected(consent('u3', [site('c-1', 'acme')]));
    listed = [site('c-1', 'acme')];
    whileAsking = async () => {
      await db.dataSource.query(`DELETE FROM connections WHERE user_id = 'u3'`);
    };
    await expect(service().read('u3', { refresh: true })).rejects.toMatchObject({ code: 'connection_not_found' });
  });

  it('lets concurrent reads share statements, and answers each caller its own user', async () => {
    const users = Array.from({ length: 30 }, (_, i) => `many-${i}`);
    for (const userId of users) await connections.storeConnected(consent(userId, [site(`c-${userId}`, userId)]));
    await db.dataSource.query(`UPDATE connections SET status = 'reauth_required' WHERE user_id IN ('many-3', 'many-7')`);
    const statements: string[][] = [];
    const counting = new (class extends ConnectionsRepository {
      override findResources(...args: Parameters<ConnectionsRepository['findResources']>) {
        statements.push([...args[1]]);
        return super.findResources(...args);
      }
    })(db.dataSource, new OutboxRepository(), cacheOff());
    const reader = new AccessibleResourcesService(counting, atlassian, clock, cacheOff());

    const asked = [...users, 'nobody-1', 'nobody-2'];
    const answers = await Promise.all(
      asked.map((userId) =>
        reader.read(userId, { refresh: false }).then(
          (answer) => answer,
          (error: { code: string }) => error.code,
        ),
      ),
    );

    asked.forEach((userId, i) => {
      if (userId.startsWith('nobody')) expect(answers[i]).toBe('connection_not_found');
      else if (userId === 'many-3' || userId === 'many-7') expect(answers[i]).toBe('reauth_required');
      else expect(answers[i]).toMatchObject({ userId, resources: [site(`c-${userId}`, userId)] });
    });
    expect(statements.flat().sort()).toEqual([...asked].sort());
    expect(statements.length).toBeLessThan(asked.length / 4);
  });
});
