import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { ConfigValidationError, loadConfig } from './app-config.js';

const key = () => randomBytes(32).toString('base64');

function problemsOf(env: Record<string, string>, dataDir: string): string[] {
  try {
    loadConfig(env, { dataDir });
  } catch (error) {
    if (error instanceof ConfigValidationError) return [...error.problems];
    throw error;
  }
  return [];
}

describe('loadConfig', () => {
  let dataDir: string;
  beforeEach(() => {
    dataDir = mkdtempSync(join(tmpdir(), 'ats-config-'));
  });
  afterEach(() => rmSync(dataDir, { recursive: true, force: true }));

  it('starts on embedded defaults with nothing set: sandbox, port 3000, the dev API key, a generated dev key', () => {
    const config = loadConfig({}, { dataDir });
    expect(config.port).toBe(3000);
    expect(config.publicUrl).toBe('http://localhost:3000');
    expect(config.database.url).toBeUndefined();
    expect(config.database.pgliteDir).toBe(join(dataDir, 'pglite'));
    expect(config.atlassian.sandbox).toBe(true);
    expect(config.atlassian.authUrl).toBe('http://localhost:3000/sandbox');
    expect(config.atlassian.callbackUrl).toBe('http://localhost:3000/auth/atlassian/callback');
    expect(config.atlassian.scopes).toEqual(['read:jira-work', 'offline_access', 'read:me']);
    expect(config.apiKeys).toEqual(['dev']);
    expect(config.apiKeysDefaulted).toBe(true);
    expect(config.apiRateLimitPerMinute).toBe(60_000);
    expect(config.jiraWebhooks).toEqual({ defaults: [], extendBeforeMs: 10 * 86_400_000, reconcileIntervalMs: 21_600_000 });
    expect(config.lifecycle).toEqual({ reconsentWarningMs: 14 * 86_400_000 });
    expect(config.proxy).toEqual({ maxBodyBytes: 10_485_760 });
    expect(config.encryption.generatedDevKey).toBe(true);
    expect(config.encryption.keys[0].key).toHaveLength(32);
    expect(config.refresh).toEqual({ leadSeconds: 600, intervalSeconds: 15, concurrency: 16 });
  });

  it('keeps the generated development key across restarts so stored tokens stay readable', () => {
    const first = loadConfig({}, { dataDir }).encryption.keys[0].key;
    expect(existsSync(join(dataDir, 'dev-encryption-key'))).toBe(true);
    expect(loadConfig({}, { dataDir }).encryption.keys[0].key.equals(first)).toBe(true);
  });

  it('derives the callback URL from PUBLIC_URL and keeps an explicit one byte for byte', () => {
    expect(loadConfig({ PUBLIC_URL: 'https://tokens.example.com/' }, { dataDir }).atlassian.callbackUrl).toBe(
      'https://tokens.example.com/auth/atlassian/callback',
    );
    const explicit = 'https://tokens.example.com/auth/atlassian/callback/';
    expect(loadConfig({ ATLASSIAN_CALLBACK_URL: explicit }, { dataDir }).atlassian.callbackUrl).toBe(explicit);
  });

  it('reads a keyring whose first key seals', () => {
    const config = loadConfig({ TOKEN_ENCRYPTION_KEYS: `new:${key()}, old:${key()}` }, { dataDir });
    expect(config.encryption.keys.map((k) => k.id)).toEqual(['new', 'old']);
    expect(config.encryption.generatedDevKey).toBe(false);
  });

  it.each([
    ['PORT', { PORT: 'eighty' }, 'PORT must be a whole number from 1 to 65535'],
    ['PORT', { PORT: '70000' }, 'PORT must be a whole number from 1 to 65535'],
    ['PUBLIC_URL', { PUBLIC_URL: 'tokens.example.com' }, 'PUBLIC_URL must be an absolute http:// or https:// URL'],
    [
      'ATLASSIAN_CALLBACK_URL',
      { ATLASSIAN_CALLBACK_URL: '/auth/atlassian/callback' },
      'ATLASSIAN_CALLBACK_URL must be an absolute http:// or https:// URL',
    ],
    [
      'ATLASSIAN_AUTH_URL',
      { ATLASSIAN_AUTH_URL: 'ftp://auth.example.com' },
      'ATLASSIAN_AUTH_URL must be an absolute http:// or https:// URL',
    ],
    ['DATABASE_URL', { DATABASE_URL: 'mysql://db/x' }, 'DATABASE_URL must start with postgres:// or postgresql://'],
    ['ATLASSIAN_CLIENT_ID', { ATLASSIAN_CLIENT_ID: 'abc' }, 'ATLASSIAN_CLIENT_SECRET is required when ATLASSIAN_CLIENT_ID is set'],
    ['ATLASSIAN_SCOPES', { ATLASSIAN_SCOPES: 'read:jira-work,write:jira-work' }, 'ATLASSIAN_SCOPES must be space-separated scopes'],
    ['API_KEYS', { API_KEYS: 'short' }, 'API_KEYS must be a comma-separated list of keys of at least 16 characters each'],
    ['API_RATE_LIMIT_PER_MINUTE', { API_RATE_LIMIT_PER_MINUTE: '-1' }, 'API_RATE_LIMIT_PER_MINUTE must be a whole number from 0'],
    ['JIRA_WEBHOOK_DEFAULTS', { JIRA_WEBHOOK_DEFAULTS: '{"events":[]}' }, 'JIRA_WEBHOOK_DEFAULTS must be a JSON array'],
    ['JIRA_WEBHOOK_DEFAULTS', { JIRA_WEBHOOK_DEFAULTS: '[{"events":["jira:issue_updated"]}]' }, 'entry 1 is not'],
    ['JIRA_WEBHOOK_DEFAULTS', { JIRA_WEBHOOK_DEFAULTS: '[nope' }, 'it is not valid JSON'],
    [
      'JIRA_WEBHOOK_EXTEND_BEFORE_DAYS',
      { JIRA_WEBHOOK_EXTEND_BEFORE_DAYS: '0' },
      'JIRA_WEBHOOK_EXTEND_BEFORE_DAYS must be a number of days',
    ],
    ['JIRA_WEBHOOK_EXTEND_BEFORE_DAYS', { JIRA_WEBHOOK_EXTEND_BEFORE_DAYS: '30' }, 'at most 29'],
    ['JIRA_WEBHOOK_RECONCILE_SECONDS', { JIRA_WEBHOOK_RECONCILE_SECONDS: '1.5' }, 'JIRA_WEBHOOK_RECONCILE_SECONDS must be a whole number'],
    ['RECONSENT_WARNING_DAYS', { RECONSENT_WARNING_DAYS: 'soon' }, 'RECONSENT_WARNING_DAYS must be a number of days'],
    ['PROXY_MAX_BODY_BYTES', { PROXY_MAX_BODY_BYTES: '10MB' }, 'PROXY_MAX_BODY_BYTES must be a whole number'],
    ['TOKEN_ENCRYPTION_KEYS', { TOKEN_ENCRYPTION_KEYS: 'nokeyid' }, 'TOKEN_ENCRYPTION_KEYS entry 1 must look like id:base64key'],
    [
      'TOKEN_ENCRYPTION_KEYS',
      { TOKEN_ENCRYPTION_KEYS: `k1:${randomBytes(16).toString('base64')}` },
      'TOKEN_ENCRYPTION_KEYS key "k1" must be 32 bytes',
    ],
    ['TOKEN_ENCRYPTION_KEYS', { TOKEN_ENCRYPTION_KEYS: `k1:${key()},k1:${key()}` }, 'TOKEN_ENCRYPTION_KEYS key id "k1" appears twice'],
    ['REFRESH_LEAD_SECONDS', { REFRESH_LEAD_SECONDS: '-5' }, 'REFRESH_LEAD_SECONDS must be a whole number'],
    ['REFRESH_INTERVAL_SECONDS', { REFRESH_INTERVAL_SECONDS: '0' }, 'REFRESH_INTERVAL_SECONDS must be a whole number'],
    ['REFRESH_CONCURRENCY', { REFRESH_CONCURRENCY: '1.5' }, 'REFRESH_CONCURRENCY must be a whole number'],
    ['WEBHOOK_URL', { WEBHOOK_URL: 'https://hooks.example.com/x' }, 'WEBHOOK_SECRET is required when WEBHOOK_URL is set'],
    ['CONNECT_SUCCESS_URL', { CONNECT_SUCCESS_URL: 'done.html' }, 'CONNECT_SUCCESS_URL must be an absolute http:// or https:// URL'],
    ['MIGRATIONS_RUN', { MIGRATIONS_RUN: 'maybe' }, 'MIGRATIONS_RUN must be true or false'],
    ['LOG_LEVEL', { LOG_LEVEL: 'loud' }, 'LOG_LEVEL must be one of'],
  ])('names %s when its value is malformed', (_name, env, message) => {
    const problems = problemsOf(env, dataDir);
    expect(problems).toHaveLength(1);
    expect(problems[0]).toContain(message);
  });

  it('takes API_RATE_LIMIT_PER_MINUTE=0 as no limit', () => {
    expect(loadConfig({ API_RATE_LIMIT_PER_MINUTE: '0' }, { dataDir }).apiRateLimitPerMinute).toBe(0);
  });

  it('reads the Jira webhook defaults and fractional days', () => {
    const config = loadConfig(
      {
        JIRA_WEBHOOK_DEFAULTS: JSON.stringify([
          { events: ['jira:issue_created', 'jira:issue_updated', 'jira:issue_created'], jqlFilter: ' project = ABC ' },
          { events: ['comment_created'], jqlFilter: 'project IN (A, B)', fieldIdsFilter: ['summary'] },
        ]),
        JIRA_WEBHOOK_EXTEND_BEFORE_DAYS: '0.5',
        RECONSENT_WARNING_DAYS: '.25',
      },
      { dataDir },
    );
    expect(config.jiraWebhooks.defaults).toEqual([
      { events: ['jira:issue_created', 'jira:issue_updated'], jqlFilter: 'project = ABC' },
      { events: ['comment_created'], jqlFilter: 'project IN (A, B)', fieldIdsFilter: ['summary'] },
    ]);
    expect(config.jiraWebhooks.extendBeforeMs).toBe(43_200_000);
    expect(config.lifecycle.reconsentWarningMs).toBe(21_600_000);
  });

  it('lists every problem at once', () => {
    const problems = problemsOf({ PORT: 'x', LOG_LEVEL: 'loud', API_KEYS: 'short' }, dataDir);
    expect(problems).toHaveLength(3);
    expect(() => loadConfig({ PORT: 'x', LOG_LEVEL: 'loud' }, { dataDir })).toThrow(/PORT[\s\S]*LOG_LEVEL/);
  });

  it('never repeats a secret value in its messages', () => {
    const secretKey = `k1:${randomBytes(20).toString('base64')}`;
    const apiKey = 'abc';
    const problems = problemsOf({ TOKEN_ENCRYPTION_KEYS: secretKey, API_KEYS: apiKey, ATLASSIAN_CLIENT_ID: 'id' }, dataDir);
    const text = problems.join('\n');
    expect(text).not.toContain(secretKey.slice(3));
    expect(text).not.toMatch(/\babc\b/);
  });

  describe('in production', () => {
    const production = {
      NODE_ENV: 'production',
      ATLASSIAN_CLIENT_ID: 'client-id',
      ATLASSIAN_CLIENT_SECRET: 'client-secret',
      API_KEYS: 'a-long-enough-api-key',
      TOKEN_ENCRYPTION_KEYS: `k1:${key()}`,
      DATABASE_URL: 'postgres://db/tokens',
    };

    it('starts when everything required is given', () => {
      expect(problemsOf(production, dataDir)).toEqual([]);
    });

    it('refuses the generated development key', () => {
      const { TOKEN_ENCRYPTION_KEYS: _omitted, ...env } = production;
      expect(problemsOf(env, dataDir)).toEqual([expect.stringContaining('TOKEN_ENCRYPTION_KEYS is required when NODE_ENV=production')]);
      expect(existsSync(join(dataDir, 'dev-encryption-key'))).toBe(false);
    });

    it('refuses a missing API_KEYS', () => {
      const { API_KEYS: _omitted, ...env } = production;
      expect(problemsOf(env, dataDir)).toEqual([expect.stringContaining('API_KEYS is required when NODE_ENV=production')]);
    });

    it.each(['prod', 'staging', 'Production'])("gives NODE_ENV=%s production's checks, naming it", (nodeEnv) => {
      const problems = problemsOf({ NODE_ENV: nodeEnv }, dataDir);
      expect(problems).toEqual([
        expect.stringContaining(`ATLASSIAN_CLIENT_ID is required when NODE_ENV=${nodeEnv}`),
        expect.stringContaining(`API_KEYS is required when NODE_ENV=${nodeEnv}`),
        expect.stringContaining(`TOKEN_ENCRYPTION_KEYS is required when NODE_ENV=${nodeEnv}`),
      ]);
    });

    it.each(['development', 'test', ''])('keeps NODE_ENV=%s on the development defaults', (nodeEnv) => {
      expect(loadConfig({ NODE_ENV: nodeEnv }, { dataDir }).production).toBe(false);
    });

    it('refuses the sandbox identity provider', () => {
      const { ATLASSIAN_CLIENT_ID: _id, ATLASSIAN_CLIENT_SECRET: _secret, ...env } = production;
      expect(problemsOf(env, dataDir)).toEqual([expect.stringContaining('ATLASSIAN_CLIENT_ID is required when NODE_ENV=production')]);
    });
  });

  it('does not write the development key file when it is not needed', () => {
    loadConfig({ TOKEN_ENCRYPTION_KEYS: `k1:${key()}` }, { dataDir });
    expect(existsSync(join(dataDir, 'dev-encryption-key'))).toBe(false);
    expect(() => readFileSync(join(dataDir, 'dev-encryption-key'))).toThrow();
  });
});
