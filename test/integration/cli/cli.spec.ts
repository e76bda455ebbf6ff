import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it, jest } from '@jest/globals';
import { MIGRATIONS } from '../../../migrations/index.js';
import { AtlassianClient } from '../../../src/atlassian/atlassian.client.js';
import { AtlassianError } from '../../../src/atlassian/atlassian.errors.js';
import { runCli } from '../../../src/cli/cli.js';
import type { Clock } from '../../../src/common/clock.js';
import { loadConfig } from '../../../src/config/app-config.js';
import { TokenCipher } from '../../../src/crypto/token-cipher.js';
import { hashSecret } from '../../../src/oauth/secrets.js';
import { OutboxRepository } from '../../../src/webhooks/outbox.repository.js';
import { freePort } from '../../utils/app.js';
import { describePostgres, openMigratedDatabase, type OpenedDatabase } from '../../utils/database.js';

const NOW = new Date();
const clock: Clock = { now: () => new Date(NOW) };
const KEY_A = `A:${randomBytes(32).toString('base64')}`;
const KEY_B = `B:${randomBytes(32).toString('base64')}`;
const minutesAgo = (m: number) => new Date(NOW.getTime() - m * 60_000);
// Creating and migrating a database (embedded ones especially) takes seconds on a busy machine.
const SETUP_TIMEOUT_MS = 60_000;

/** The commands end to end against a real database, as `npm run cli -- …` runs them (minus the process). */
describePostgres('the cli', () => {
  let db: OpenedDatabase;
  let dataDir: string;
  let env: Record<string, string>;

  beforeAll(async () => {
    // Atlassian is not reached from the tests: its token endpoint refuses doctor's made-up code as Atlassian does (403
    // invalid_grant; how AtlassianClient reads that answer is its own unit test's concern).
    jest.spyOn(AtlassianClient.prototype, 'exchangeCode').mockRejectedValue(
      new AtlassianError('invalid_grant', 'Atlassian answered invalid_grant: Invalid authorization code', {
        status: 403,
        error: 'invalid_grant',
        description: 'Invalid authorization code',
      }),
    );
    db = await openMigratedDatabase('postgres');
    dataDir = mkdtempSync(join(tmpdir(), 'ats-cli-'));
    env = {
      NODE_ENV: 'production',
      DATABASE_URL: db.url!,
      PUBLIC_URL: 'https://tokens.example.com',
      ATLASSIAN_CLIENT_ID: 'client-id',
      ATLASSIAN_CLIENT_SECRET: 'client-SECRET-value',
      API_KEYS: 'api-key-SECRET-0123456789',
      TOKEN_ENCRYPTION_KEYS: KEY_A,
      WEBHOOK_URL: 'https://hooks.example.com/atlassian',
      WEBHOOK_SECRET: 'webhook-SECRET-0123456789',
    };
  }, SETUP_TIMEOUT_MS);
  afterAll(async () => {
    jest.restoreAllMocks();
    await db?.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  async function cli(...argv: string[]): Promise<{ code: number; output: string }>;
  async function cli(overrides: Record<string, string>, ...argv: string[]): Promise<{ code: number; output: string }>;
  async function cli(first: string | Record<string, string>, ...rest: string[]): Promise<{ code: number; output: string }> {
    const overrides = typeof first === 'string' ? {} : first;
    const argv = typeof first === 'string' ? [first, ...rest] : rest;
    const lines: string[] = [];
    const code = await runCli(argv, { env: { ...env, ...overrides }, clock, dataDir, print: (line) => lines.push(line) });
    const output = lines.join('\n');
    for (const secret of ['client-SECRET-value', 'api-key-SECRET', 'webhook-SECRET', KEY_A.slice(2), KEY_B.slice(2)]) {
      expect(output).not.toContain(secret);
    }
    return { code, output };
  }

  function sealer(keyring: string): TokenCipher {
    return new TokenCipher(loadConfig({ TOKEN_ENCRYPTION_KEYS: keyring }));
  }

  async function insertConnection(values: { status: string; dueAt?: Date; expiresAt?: Date; attemptedAt?: Date; keyring?: string }) {
    const id = randomUUID();
    const cipher = sealer(values.keyring ?? KEY_A);
    const access = cipher.seal(`access-${id}`, { table: 'connections', rowId: id, column: 'access_token' });
    const refresh = cipher.seal(`refresh-${id}`, { table: 'connections', rowId: id, column: 'refresh_token' });
    await db.dataSource.query(
      `INSERT INTO connections (id, user_id, atlassian_account_id, status, access_token_ciphertext, access_token_key_id,
         refresh_token_ciphertext, refresh_token_key_id, due_at, access_token_expires_at, refresh_attempted_at, consecutive_failures)
       VALUES ($1, $2, 'account', $3, $4, $5, $6, $7, $8, $9, $10, 2)`,
      [
        id,
        `user-${id.slice(0, 8)}`,
        values.status,
        access.ciphertext,
        access.keyId,
        refresh.ciphertext,
        refresh.keyId,
        values.dueAt ?? null,
        values.expiresAt ?? null,
        values.attemptedAt ?? null,
      ],
    );
    return id;
  }

  it('doctor: every check passes on a sound production setup, exit 0', async () => {
    const { code, output } = await cli('doctor');
    expect(output).not.toMatch(/^[⚠✗]/m);
    expect(output).toContain(`✓ All ${MIGRATIONS.length} migrations applied`);
    expect(output).toMatch(/✓ Database reachable: postgres:\/\/postgres@127\.0\.0\.1/);
    expect(code).toBe(0);
  });

  it('doctor and the other commands: exit 1 with a clear line when the database is unreachable', async () => {
    const unreachable = `postgres://postgres:pw-SECRET@127.0.0.1:${await freePort()}/nothing`;
    const doctor = await cli({ DATABASE_URL: unreachable }, 'doctor');
    expect(doctor.code).toBe(1);
    expect(doctor.output).toMatch(/^✗ Database unreachable: .*ECONNREFUSED/m);
    const connections = await cli({ DATABASE_URL: unreachable }, 'connections');
    expect(connections.code).toBe(1);
    expect(connections.output).toMatch(/^✗ Database unreachable at postgres:\/\/postgres:\*\*\*@127\.0\.0\.1:\d+\/nothing: .*ECONNREFUSED/);
    expect(connections.output).not.toContain('pw-SECRET');
    const explain = await cli(
      { DATABASE_URL: unreachable },
      'explain-callback',
      'https://tokens.example.com/auth/atlassian/callback?code=c&state=s',
    );
    expect(explain.code).toBe(1);
    expect(explain.output).toContain('✓ The location is ATLASSIAN_CALLBACK_URL');
    expect(explain.output).toMatch(/^✗ State not looked up: database unreachable at postgres:\/\/postgres:\*\*\*@/m);
  });

  it('connections: counts by status, the refresh backlog, refreshes with no stored answer, the webhook outbox', async () => {
    await insertConnection({ status: 'active', dueAt: minutesAgo(-30), expiresAt: minutesAgo(-40) });
    await insertConnection({ status: 'active', dueAt: minutesAgo(3), expiresAt: minutesAgo(1) });
    const stuck = await insertConnection({ status: 'refresh_failing', dueAt: minutesAgo(1), attemptedAt: minutesAgo(25) });
    await insertConnection({ status: 'reauth_required', dueAt: minutesAgo(90) });
    await db.dataSource.transaction((m) => new OutboxRepository().enqueue(m, { type: 'connection.created', userId: 'u' }, NOW));

    const { code, output } = await cli('connections');
    expect(code).toBe(0);
    expect(output).toContain(
      [
        'Connections: 4',
        '  active                  2',
        '  refresh_failing         1',
        '  reauth_required         1',
        'Refresh backlog: 2 due now; the oldest has waited 3 min',
        'Active connections with an expired access token: 1',
        'Refreshes started over 10 minutes ago with no stored answer: 1',
        `  user-${stuck.slice(0, 8)}  refresh_failing, started 25 min ago, 2 failures in a row`,
      ].join('\n'),
    );
    expect(output).toContain('Webhook outbox: 1 pending, 0 given up');
  });

  it('rotate-keys: a dry run counts, a run re-encrypts under the first key, then nothing is left', async () => {
    await insertConnection({ status: 'active', keyring: KEY_A });
    const keyring = { TOKEN_ENCRYPTION_KEYS: `${KEY_B},${KEY_A}` };
    const [{ n }]: { n: number }[] = await db.dataSource.query(`SELECT count(*)::int AS n FROM connections`);

    const dry = await cli(keyring, 'rotate-keys', '--dry-run');
    expect(dry.code).toBe(0);
    expect(dry.output).toContain(
      `Dry run: would re-encrypt ${2 * n} tokens in ${n} connections (${2 * n} under "A"). Nothing was changed.`,
    );

    const run = await cli(keyring, 'rotate-keys');
    expect(run.code).toBe(0);
    expect(run.output).toContain(`  batch 1: ${n} connections re-encrypted (${n} so far)`);
    expect(run.output).toContain(`✓ Re-encrypted ${2 * n} tokens in ${n} connections under "B".`);

    const again = await cli({ TOKEN_ENCRYPTION_KEYS: KEY_B }, 'rotate-keys');
    expect(again.output).toContain('✓ Nothing to do: every token is under the active key.');
    expect(again.code).toBe(0);
  });

  it('rotate-keys: exit 1 when tokens are under a key missing from the keyring', async () => {
    const { code, output } = await cli({ TOKEN_ENCRYPTION_KEYS: `C:${randomBytes(32).toString('base64')}` }, 'rotate-keys');
    expect(code).toBe(1);
    expect(output).toMatch(/✗ Keys not in TOKEN_ENCRYPTION_KEYS: B;/);
    expect(output).toMatch(/✗ Still not under "C"/);
  });

  it('explain-callback: looks the state up in oauth_states by its hash', async () => {
    const state = randomBytes(32).toString('base64url');
    await db.dataSource.query(
      `INSERT INTO oauth_states (state_hash, user_id, browser_hash, redirect_uri, created_at, expires_at) VALUES ($1, 'user-7', 'b', $2, $3, $4)`,
      [hashSecret(state), 'https://tokens.example.com/auth/atlassian/callback', minutesAgo(2), minutesAgo(-8)],
    );
    const { code, output } = await cli(
      'explain-callback',
      `https://tokens.example.com/auth/atlassian/callback?code=some-code-value&state=${state}`,
    );
    expect(output).toContain('✓ Known: sign-in started 2 min ago');
    expect(output).toContain('✓ Not used yet');
    expect(output).not.toContain(state);
    expect(code).toBe(0);
  });

  it('refuses unknown commands and wrong arguments with the usage, exit 1', async () => {
    expect((await cli('rotate')).code).toBe(1);
    expect((await cli('explain-callback')).output).toContain('Expected <url>.');
    expect((await cli('connections', '--all')).output).toContain('Unknown option --all.');
  });
});
