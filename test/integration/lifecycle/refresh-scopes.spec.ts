import { afterAll, afterEach, beforeAll, beforeEach, expect, it } from '@jest/globals';
import { ManualClock, SandboxTokenEndpoint, seedConnection } from '../../utils/connections.js';
import { describePostgres, openMigratedDatabase, type OpenedDatabase } from '../../utils/database.js';
import { refreshConfig, refreshStack, silenceNestLogs, truncate, type RefreshStack } from '../refresh/refresh-stack.js';

const HOUR = 3_600_000;

silenceNestLogs();

describePostgres('scopes after a refresh', () => {
  let db: OpenedDatabase;
  let clock: ManualClock;
  let sandbox: SandboxTokenEndpoint;
  let stack: RefreshStack;

  beforeAll(async () => {
    db = await openMigratedDatabase('postgres');
  }, 30_000);
  afterAll(() => db?.close(), 30_000);
  beforeEach(async () => {
    await truncate(db.dataSource);
    clock = new ManualClock();
    sandbox = await new SandboxTokenEndpoint(clock).start();
    stack = await refreshStack({ config: refreshConfig(sandbox.url), clock, dataSource: db.dataSource });
  });
  afterEach(async () => {
    await stack.close();
    await sandbox.close();
  });

  const scopesOf = async (id: string) =>
    (await db.dataSource.query<Record<string, string[]>[]>(`SELECT scopes, missing_scopes FROM connections WHERE id = $1`, [id]))[0];

  it("are what Atlassian's answer grants, and what it lacks of ATLASSIAN_SCOPES is recomputed with them", async () => {
    const pair = await sandbox.connect('narrowed');
    const id = await seedConnection(db.dataSource, stack.cipher, clock, {
      userId: 'narrowed',
      atlassianAccountId: pair.accountId,
      accessToken: pair.accessToken,
      refreshToken: pair.refreshToken,
      accessTokenExpiresAt: new Date(clock.now().getTime() + 60_000),
    });
    // The same Atlassian account consents again elsewhere, to fewer scopes: its one grant has only those now.
    await sandbox.connect('narrowed', 'read:jira-work offline_access');

    expect(await stack.service.runDueRefreshes()).toMatchObject({ refreshed: 1 });
    expect(await scopesOf(id)).toEqual({ scopes: ['read:jira-work', 'offline_access'], missing_scopes: ['read:me'] });

    await sandbox.connect('narrowed');
    clock.advance(HOUR);
    expect(await stack.service.runDueRefreshes()).toMatchObject({ refreshed: 1 });
    expect(await scopesOf(id)).toEqual({ scopes: ['read:jira-work', 'offline_access', 'read:me'], missing_scopes: [] });
  });
});
