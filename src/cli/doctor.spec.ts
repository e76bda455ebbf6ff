import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from '@jest/globals';
import { MIGRATIONS } from '../../migrations/index.js';
import { AtlassianError } from '../atlassian/atlassian.errors.js';
import type { TokenSet } from '../atlassian/atlassian.types.js';
import type { Clock } from '../common/clock.js';
import { type AppConfig, loadConfig } from '../config/app-config.js';
import type { Check } from './cli-output.js';
import { doctor, type DoctorDatabase } from './doctor.command.js';
import {
  checkCallbackRoute,
  checkCallbackUrl,
  checkClock,
  checkConfiguration,
  checkJiraWebhooks,
  checkMigrations,
  checkProductionReadiness,
  checkWebhookBacklog,
  MADE_UP_CODE,
  verifyCredentials,
} from './doctor.checks.js';

const dataDir = mkdtempSync(join(tmpdir(), 'ats-doctor-'));
afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

const KEY = randomBytes(32).toString('base64');
const API_KEY = 'api-key-0123456789abcdef-SECRET';
const CLIENT_SECRET = 'client-secret-SECRET-value';
const WEBHOOK_SECRET = 'webhook-secret-SECRET-value';
const PRODUCTION = {
  NODE_ENV: 'production',
  PUBLIC_URL: 'https://tokens.example.com',
  DATABASE_URL: 'postgres://app:db-password-SECRET@db.internal:5432/tokens',
  ATLASSIAN_CLIENT_ID: 'client-id-123',
  ATLASSIAN_CLIENT_SECRET: CLIENT_SECRET,
  API_KEYS: API_KEY,
  TOKEN_ENCRYPTION_KEYS: `k2:${KEY},k1:${randomBytes(32).toString('base64')}`,
  WEBHOOK_URL: 'https://hooks.example.com/atlassian?token=url-token-SECRET',
  WEBHOOK_SECRET,
};

function config(env: Record<string, string>): AppConfig {
  return loadConfig(env, { dataDir });
}

/** What the credentials check answers when Atlassian accepts the client id and secret. */
const ACCEPTED: Check = { status: 'ok', text: 'Atlassian accepted the client id and secret' };
const notCalled = async (): Promise<TokenSet> => {
  throw new Error('must not be called');
};

describe('doctor configuration checks', () => {
  it('pass a sound production configuration and print no secret', () => {
    const checks = checkConfiguration(config(PRODUCTION), ACCEPTED);
    expect(checks.filter((c) => c.status !== 'ok')).toEqual([]);
    const text = JSON.stringify(checks);
    for (const secret of [API_KEY, CLIENT_SECRET, WEBHOOK_SECRET, KEY, 'db-password-SECRET', 'url-token-SECRET']) {
      expect(text).not.toContain(secret);
    }
    expect(text).toContain('sha256:');
    expect(text).toContain('\\"k2\\" seals new tokens; also opens k1');
  });

  it('warn about Jira webhooks that cannot work: defaults without the scopes, or a PUBLIC_URL Jira cannot deliver to', () => {
    const withDefaults = { ...PRODUCTION, JIRA_WEBHOOK_DEFAULTS: '[{"events":["jira:issue_updated"],"jqlFilter":"project = A"}]' };
    expect(checkJiraWebhooks(config(withDefaults))).toMatchObject({
      status: 'warn',
      text: expect.stringContaining('lacks manage:jira-webhook'),
    });
    const scoped = { ...withDefaults, ATLASSIAN_SCOPES: 'read:jira-work manage:jira-webhook' };
    expect(checkJiraWebhooks(config(scoped))).toMatchObject({
      status: 'ok',
      text: 'Jira delivers webhooks to https://tokens.example.com/atlassian/jira-webhooks; ATLASSIAN_SCOPES has read:jira-work and manage:jira-webhook',
    });
    expect(checkJiraWebhooks(config({ ...scoped, PUBLIC_URL: 'http://tokens.example.com' }))).toMatchObject({
      status: 'warn',
      text: expect.stringContaining('PUBLIC_URL is not https'),
    });
    expect(checkJiraWebhooks(config(PRODUCTION)).text).toContain('a PUT …/jira-webhooks needs manage:jira-webhook in ATLASSIAN_SCOPES');
  });

  it('refuse an http callback URL except on localhost', () => {
    expect(
      checkCallbackUrl(config({ ...PRODUCTION, ATLASSIAN_CALLBACK_URL: 'http://tokens.example.com/auth/atlassian/callback' })).status,
    ).toBe('fail');
    expect(checkCallbackUrl(config({ ATLASSIAN_CALLBACK_URL: 'http://localhost:3000/auth/atlassian/callback' })).status).toBe('ok');
    expect(checkCallbackUrl(config({ ATLASSIAN_CALLBACK_URL: 'http://127.0.0.1:3000/auth/atlassian/callback' })).status).toBe('ok');
    expect(checkCallbackUrl(config({ ATLASSIAN_CALLBACK_URL: 'https://x.example.com/cb#frag' })).status).toBe('fail');
  });

  it('warn when the callback URL is not PUBLIC_URL + /auth/atlassian/callback, naming a trailing slash', () => {
    const slash = checkCallbackRoute(
      config({ ...PRODUCTION, ATLASSIAN_CALLBACK_URL: 'https://tokens.example.com/auth/atlassian/callback/' }),
    );
    expect(slash).toMatchObject({ status: 'warn', text: expect.stringContaining('only a trailing slash differs') });
    const proxied = checkCallbackRoute(config({ ...PRODUCTION, ATLASSIAN_CALLBACK_URL: 'https://edge.example.com/oauth/callback' }));
    expect(proxied).toMatchObject({ status: 'warn', fix: expect.stringContaining('registered in the Atlassian developer console') });
    expect(checkCallbackRoute(config(PRODUCTION)).status).toBe('ok');
  });

  it('note sandbox mode and list what production would refuse', async () => {
    const checks = checkConfiguration(config({}), await verifyCredentials(config({}), notCalled));
    expect(checks.find((c) => c.text.startsWith('Sandbox mode'))?.status).toBe('warn');
    expect(checkProductionReadiness(config({})).text).toBe(
      'NODE_ENV=development; production would refuse API_KEYS unset, TOKEN_ENCRYPTION_KEYS unset, ATLASSIAN_CLIENT_ID unset (sandbox); DATABASE_URL unset (embedded database: one process only)',
    );
    expect(checks.find((c) => c.text.startsWith('Scopes'))).toMatchObject({
      status: 'ok',
      text: expect.stringContaining('offline_access read:me'),
    });
  });
});

describe('doctor database checks', () => {
  const at = (seconds: number) => new Date(Date.UTC(2026, 10, 27, 12, 0, seconds));

  it('warn when the clocks differ by more than 30 s, not counting the query time', () => {
    expect(checkClock(at(0), at(31), at(2)).status).toBe('ok');
    expect(checkClock(at(0), at(32), at(0))).toMatchObject({
      status: 'warn',
      text: "This machine's clock is 32.0 s behind the database server's",
    });
    expect(checkClock(at(40), at(0), at(40)).text).toContain('ahead of');
  });

  it('fail on pending migrations and name them', () => {
    expect(checkMigrations(['A', 'B'], null)).toMatchObject({ status: 'fail', text: '2 of 2 migrations not applied: A, B' });
    expect(checkMigrations(['A', 'B'], ['A'])).toMatchObject({ status: 'fail', text: '1 of 2 migrations not applied: B' });
    expect(checkMigrations(['A', 'B'], ['A', 'B']).status).toBe('ok');
    expect(checkMigrations(['A'], ['A', 'Z']).status).toBe('warn');
  });

  it('warn about webhooks that were given up', () => {
    const now = at(0);
    expect(checkWebhookBacklog(config(PRODUCTION), { pending: 0, dead: 2, oldestPendingAt: null }, now).status).toBe('warn');
    expect(checkWebhookBacklog(config({}), { pending: 3, dead: 0, oldestPendingAt: at(-90) }, now).text).toBe(
      'Webhook outbox: 3 pending, oldest from 1 min 30 s ago, 0 given up (not sent: WEBHOOK_URL is not set)',
    );
  });
});

describe('doctor command', () => {
  const clock: Clock = { now: () => new Date() };
  const healthy: DoctorDatabase = {
    location: 'postgres://app:***@db.internal:5432/tokens',
    serverTime: async () => new Date(),
    appliedMigrations: async () => MIGRATIONS.map((m) => m.name),
    webhookBacklog: async () => ({ pending: 0, dead: 0, oldestPendingAt: null }),
    close: async () => undefined,
  };

  async function run(env: Record<string, string>, database: Partial<DoctorDatabase> | Error): Promise<{ code: number; lines: string[] }> {
    const lines: string[] = [];
    const code = await doctor(env, {
      print: (line) => lines.push(line),
      clock,
      dataDir,
      verifyCredentials: async () => ACCEPTED,
      openDatabase: async () => {
        if (database instanceof Error) throw database;
        return { ...healthy, ...database };
      },
    });
    return { code, lines };
  }

  it('exits 0 with one ✓ line per check when all is well', async () => {
    const { code, lines } = await run(PRODUCTION, {});
    expect(code).toBe(0);
    const checks = lines.filter((l) => /^[✓⚠✗] /.test(l));
    expect(checks.every((l) => l.startsWith('✓ '))).toBe(true);
    expect(checks).toHaveLength(14);
    for (const secret of [API_KEY, CLIENT_SECRET, WEBHOOK_SECRET, KEY, 'db-password-SECRET', 'url-token-SECRET']) {
      expect(lines.join('\n')).not.toContain(secret);
    }
  });

  it('exits 1 and lists every configuration problem, skipping the database', async () => {
    const { code, lines } = await run({ ...PRODUCTION, API_KEYS: '', PORT: 'x' }, new Error('must not be opened'));
    expect(code).toBe(1);
    expect(lines).toEqual([
      'Configuration',
      '✗ PORT must be a whole number from 1 to 65535',
      '✗ API_KEYS is required when NODE_ENV=production (only development and test fall back to the key "dev")',
      'Database checks skipped: the service would not start with this configuration; fix it first.',
    ]);
  });

  it('exits 1 when the database is unreachable or not migrated', async () => {
    const unreachable = await run(PRODUCTION, new Error('connect ECONNREFUSED 10.0.0.5:5432'));
    expect(unreachable.code).toBe(1);
    expect(unreachable.lines).toContain('✗ Database unreachable: connect ECONNREFUSED 10.0.0.5:5432');

    const pending = await run(PRODUCTION, { appliedMigrations: async () => null });
    expect(pending.code).toBe(1);
    expect(pending.lines.some((l) => l.startsWith('✗ ') && l.includes('migrations not applied'))).toBe(true);
  });

  it('still exits 0 on warnings only (a skewed clock)', async () => {
    const { code, lines } = await run(PRODUCTION, { serverTime: async () => new Date(Date.now() + 45_000) });
    expect(code).toBe(0);
    expect(lines.some((l) => l.startsWith("⚠ This machine's clock is"))).toBe(true);
  });
});

describe('doctor credentials check', () => {
  const production = () => config(PRODUCTION);
  const refused = (kind: AtlassianError['kind'], status: number, error?: string, description?: string) => async (): Promise<TokenSet> => {
    throw new AtlassianError(kind, `Atlassian answered ${error ?? status}`, { status, error, description });
  };

  it.each([
    [
      'a right secret: the made-up code is refused as invalid_grant',
      refused('invalid_grant', 403, 'invalid_grant', 'Invalid authorization code'),
      'ok',
      'Atlassian accepted the client id and secret (client id client-id-123): only the made-up code sent to check them was refused (403 invalid_grant)',
    ],
    [
      'a wrong secret: 401 access_denied',
      refused('client_unauthorized', 401, 'access_denied', 'Unauthorized'),
      'fail',
      'Atlassian refused the client id and secret (401 access_denied): ATLASSIAN_CLIENT_SECRET or ATLASSIAN_CLIENT_ID is wrong',
    ],
    [
      'Atlassian out of reach',
      async (): Promise<TokenSet> => {
        throw new AtlassianError('network', 'Atlassian could not be reached (ENOTFOUND)');
      },
      'warn',
      'Atlassian credentials not checked: https://auth.atlassian.com/oauth/token could not be reached (Atlassian could not be reached (ENOTFOUND))',
    ],
    [
      'Atlassian failing',
      refused('unavailable', 503),
      'warn',
      'Atlassian credentials not checked: https://auth.atlassian.com/oauth/token could not be reached (Atlassian answered 503)',
    ],
  ])('tells %s', async (_case, exchange, status, text) => {
    const check = await verifyCredentials(production(), exchange);
    expect(check).toMatchObject({ status, text });
    expect(JSON.stringify(check)).not.toContain(CLIENT_SECRET);
  });

  it('sends one made-up code, and never for the sandbox', async () => {
    const codes: string[] = [];
    await verifyCredentials(production(), async (code) => {
      codes.push(code);
      throw new AtlassianError('invalid_grant', 'x', { status: 403, error: 'invalid_grant' });
    });
    expect(codes).toEqual([MADE_UP_CODE]);
    const sandbox = await verifyCredentials(config({}), notCalled);
    expect(sandbox).toMatchObject({ status: 'warn', text: expect.stringContaining('Sandbox mode') });
  });
});
