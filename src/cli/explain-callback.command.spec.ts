import { randomBytes } from 'node:crypto';
import { describe, expect, it, jest } from '@jest/globals';
import { AtlassianError } from '../atlassian/atlassian.errors.js';
import type { TokenSet } from '../atlassian/atlassian.types.js';
import { loadConfig } from '../config/app-config.js';
import type { OAuthStateRecord } from '../oauth/oauth-states.repository.js';
import { hashSecret } from '../oauth/secrets.js';
import { explainCallback } from './explain-callback.command.js';

const CALLBACK = 'https://tokens.example.com/auth/atlassian/callback';
const STATE = 'AbCdEfGhIjKlMnOpQrStUvWxYz0123456789_-abcde';
const CODE = 'eyJhbGciOiJIUzI1NiJ9.eyJqdGkiOiJhYmMifQ.c2lnbmF0dXJl';
const NOW = new Date('2026-11-27T12:00:00.000Z');
const config = loadConfig({
  PUBLIC_URL: 'https://tokens.example.com',
  ATLASSIAN_CLIENT_ID: 'client-id',
  ATLASSIAN_CLIENT_SECRET: 'client-secret',
  TOKEN_ENCRYPTION_KEYS: `k1:${randomBytes(32).toString('base64')}`,
});

function record(overrides: Partial<OAuthStateRecord> = {}): OAuthStateRecord {
  return {
    id: 'state-row',
    userId: 'user-42',
    browserHash: 'b',
    redirectUri: CALLBACK,
    createdAt: new Date(NOW.getTime() - 3 * 60_000),
    expiresAt: new Date(NOW.getTime() + 7 * 60_000),
    consumedAt: null,
    outcome: null,
    ...overrides,
  };
}

async function explain(
  url: string,
  states: Record<string, OAuthStateRecord>,
  exchange?: (code: string) => Promise<TokenSet>,
): Promise<{ code: number; lines: string[]; lookedUp: string[] }> {
  const lines: string[] = [];
  const lookedUp: string[] = [];
  const code = await explainCallback(url, {
    print: (line) => lines.push(line),
    clock: { now: () => NOW },
    config,
    findState: async (hash) => {
      lookedUp.push(hash);
      return states[hash];
    },
    exchange,
  });
  return { code, lines, lookedUp };
}

function expectNoSecrets(lines: readonly string[]): void {
  const text = lines.join('\n');
  expect(text).not.toContain(CODE.slice(3, -3));
  expect(text).not.toContain(STATE.slice(3, -3));
}

describe('explain-callback', () => {
  it('shows code and state masked, and the state known, unused, fresh, with the configured redirect_uri', async () => {
    const { code, lines, lookedUp } = await explain(`${CALLBACK}?code=${CODE}&state=${STATE}`, { [hashSecret(STATE)]: record() });
    expect(code).toBe(0);
    expect(lookedUp).toEqual([hashSecret(STATE)]);
    expect(lines).toEqual([
      'Callback URL',
      `  location: ${CALLBACK}`,
      `  code:     ${CODE.length} characters, "eyJ…${CODE.slice(-3)}"`,
      `  state:    43 characters, "AbC…cde"`,
      '✓ The location is ATLASSIAN_CALLBACK_URL',
      '✓ code and state are present once each, with no sign of double encoding, spaces or truncation',
      '',
      'State',
      '✓ Known: sign-in started 3 min ago (2026-11-27T11:57:00.000Z) for user "user-42"',
      '✓ Not expired: valid for another 7 min',
      '✓ Not used yet',
      `✓ redirect_uri sent to /authorize: ${CALLBACK} (equals ATLASSIAN_CALLBACK_URL)`,
    ]);
    expectNoSecrets(lines);
  });

  it('says when the state was used, expired, or sent with another redirect_uri', async () => {
    const used = record({
      consumedAt: new Date(NOW.getTime() - 60_000),
      expiresAt: new Date(NOW.getTime() - 30_000),
      outcome: 'code_rejected',
      redirectUri: `${CALLBACK}/`,
    });
    const { code, lines } = await explain(`${CALLBACK}?code=${CODE}&state=${STATE}`, { [hashSecret(STATE)]: used });
    expect(code).toBe(1);
    expect(lines).toEqual(
      expect.arrayContaining([
        '⚠ Expired 30 s ago: a callback with it now is refused',
        '⚠ Already used 1 min ago (outcome: code_rejected): its code was presented then, and cannot be used again',
        `✗ redirect_uri sent to /authorize: ${CALLBACK}/; ATLASSIAN_CALLBACK_URL is now ${CALLBACK}`,
      ]),
    );
  });

  it('finds a double-encoded state after decoding it once more, and says the URL was altered', async () => {
    const original = `${STATE.slice(0, 40)}/ab`;
    const twice = encodeURIComponent(encodeURIComponent(original));
    const { code, lines, lookedUp } = await explain(`${CALLBACK}?code=${CODE}&state=${twice}`, { [hashSecret(original)]: record() });
    expect(code).toBe(1);
    expect(lookedUp).toHaveLength(2);
    expect(lines).toContain('✗ Known only after undoing the second URL-encoding: the URL was altered between Atlassian and this service');
  });

  it('reads a callback whose whole query string was encoded again', async () => {
    const url = `${CALLBACK}${encodeURIComponent(`?code=${CODE}&state=${STATE}`)}`;
    const { code, lines, lookedUp } = await explain(url, { [hashSecret(STATE)]: record() });
    expect(code).toBe(1);
    expect(lookedUp).toEqual([hashSecret(STATE)]);
    expect(lines).toEqual(
      expect.arrayContaining([
        '✗ The whole query string was URL-encoded ("?" arrived as %3F): the service sees no code and no state',
        '✓ Not used yet',
      ]),
    );
  });

  it('says an unknown state is unknown, and a callback that landed elsewhere came from another sign-in', async () => {
    const { code, lines } = await explain(`https://old.example.com/callback?code=${CODE}&state=${STATE}`, {});
    expect(code).toBe(1);
    expect(lines).toEqual(
      expect.arrayContaining([
        `✗ The location differs from ATLASSIAN_CALLBACK_URL (${CALLBACK}): this sign-in was started with another redirect_uri`,
        '✗ Unknown state: not in oauth_states',
      ]),
    );
  });

  describe('--exchange', () => {
    it('reports an accepted code without showing or keeping the tokens', async () => {
      const exchange = jest.fn(async (_code: string): Promise<TokenSet> => ({
        accessToken: 'access-TOKEN-value',
        refreshToken: 'refresh-TOKEN-value',
        expiresInSeconds: 3600,
        scopes: ['read:jira-work', 'offline_access'],
      }));
      const { code, lines } = await explain(`${CALLBACK}?code=${CODE}&state=${STATE}`, { [hashSecret(STATE)]: record() }, exchange);
      expect(code).toBe(0);
      expect(exchange).toHaveBeenCalledWith(CODE);
      expect(lines.join('\n')).not.toContain('TOKEN-value');
      expect(lines).toContain('✓ A refresh token came with it (offline_access granted)');
      expectNoSecrets(lines);
    });

    it("explains Atlassian's invalid_grant with the oauth diagnosis", async () => {
      const exchange = async (): Promise<TokenSet> => {
        throw new AtlassianError('invalid_grant', 'Atlassian answered invalid_grant: Invalid authorization code', {
          status: 403,
          error: 'invalid_grant',
          description: 'Invalid authorization code',
        });
      };
      const { code, lines } = await explain(`${CALLBACK}?code=${CODE}&state=${STATE}`, { [hashSecret(STATE)]: record() }, exchange);
      expect(code).toBe(1);
      expect(lines).toEqual(
        expect.arrayContaining([
          '✗ Atlassian refused the sign-in code (invalid_grant: Invalid authorization code).',
          expect.stringMatching(/^⚠ possible: The service sent the same redirect_uri/),
        ]),
      );
      expectNoSecrets(lines);
    });

    it('refuses to present a code the service already presented', async () => {
      const exchange = jest.fn(async (_code: string): Promise<TokenSet> => {
        throw new Error('must not be called');
      });
      const used = record({ consumedAt: new Date(NOW.getTime() - 60_000), outcome: 'connected' });
      const { code, lines } = await explain(`${CALLBACK}?code=${CODE}&state=${STATE}`, { [hashSecret(STATE)]: used }, exchange);
      expect(code).toBe(1);
      expect(exchange).not.toHaveBeenCalled();
      expect(lines).toContain('✗ Not exchanged: the service already presented this code when the callback arrived');
    });
  });
});

/** Callback URLs as people paste them after something mangled them on the way, and the line that must name the damage. */
describe('explain-callback on mangled callback URLs', () => {
  const clean = `${CALLBACK}?code=${CODE}&state=${STATE}`;
  it.each([
    [
      'a code cut short (the URL ends inside it, before the state)',
      `${CALLBACK}?code=${CODE.slice(0, 20)}`,
      '✗ No state, and the URL ends in the code: it was cut short there (Atlassian sends the state after the code), so the code is probably incomplete too',
    ],
    [
      'a whole query string URL-encoded after the "?"',
      `${CALLBACK}?${encodeURIComponent(`code=${CODE}&state=${STATE}`)}`,
      '✗ The query string was URL-encoded as a whole ("=" and "&" arrived as %3D and %26): the service cannot read the code and the state from it',
    ],
    [
      'a whole query string URL-encoded with its "?"',
      `${CALLBACK}${encodeURIComponent(`?code=${CODE}&state=${STATE}`)}`,
      '✗ The whole query string was URL-encoded ("?" arrived as %3F): the service sees no code and no state',
    ],
    [
      'only the "&" before the state encoded',
      `${CALLBACK}?code=${CODE}%26state%3D${STATE}`,
      '✗ The query string was URL-encoded as a whole ("=" and "&" arrived as %3D and %26): the service cannot read the code and the state from it',
    ],
    [
      'a whole callback URL encoded again',
      encodeURIComponent(clean),
      '✗ The whole URL was URL-encoded ("://" arrived as %3A%2F%2F): it was copied from inside another link',
    ],
  ])('%s', async (_case, url, finding) => {
    const { code, lines } = await explain(url, { [hashSecret(STATE)]: record() });
    expect(code).toBe(1);
    expect(lines).toContain(finding);
    expect(lines).not.toContain('✗ No code and no error: this is not what Atlassian sends back, or it was cut before them');
    expectNoSecrets(lines);
  });

  it('a Deny callback (no code) whose state was used: no code was presented', async () => {
    const denied = record({ consumedAt: new Date(NOW.getTime() - 60_000), outcome: 'access_denied' });
    const url = `${CALLBACK}?error=access_denied&error_description=User%20did%20not%20authorize%20the%20request&state=${STATE}`;
    const { lines } = await explain(url, { [hashSecret(STATE)]: denied });
    expect(lines).toContain(
      '⚠ Already used 1 min ago (outcome: access_denied): Atlassian sent an error instead of a code, so no code was presented',
    );
    expect(lines.join('\n')).not.toContain('its code was presented');
  });

  it('--exchange after the sandbox restarted: the sandbox forgot its codes, whatever their age or redirect_uri', async () => {
    const sandboxConfig = loadConfig({ PUBLIC_URL: 'https://tokens.example.com' });
    const lines: string[] = [];
    const code = await explainCallback(clean, {
      print: (line) => lines.push(line),
      clock: { now: () => NOW },
      config: sandboxConfig,
      findState: async () => record({ createdAt: new Date(NOW.getTime() - 12 * 60_000), expiresAt: new Date(NOW.getTime() - 2 * 60_000) }),
      exchange: async () => {
        throw new AtlassianError('invalid_grant', 'Atlassian answered invalid_grant: Invalid authorization code', {
          status: 403,
          error: 'invalid_grant',
          description: 'Invalid authorization code',
        });
      },
      sandboxStartedAt: async () => new Date(NOW.getTime() - 5 * 60_000),
    });
    expect(code).toBe(1);
    expect(lines).toContain(
      '✗ The sandbox forgot this code: it started again 5 min ago (2026-11-27T11:55:00.000Z), after this sign-in began 12 min ago, and it keeps its codes in memory only',
    );
    expect(lines.join('\n')).not.toMatch(/likely: |possible: /);
  });
});
