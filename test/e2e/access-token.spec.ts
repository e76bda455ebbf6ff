import { afterAll, beforeAll, beforeEach, expect, it } from '@jest/globals';
import { DataSource } from 'typeorm';
import { TokenCipher } from '../../src/crypto/token-cipher.js';
import { startTestApp, TEST_API_KEY, type TestApp } from '../utils/app.js';
import { ManualClock, readConnection, SandboxTokenEndpoint, seedConnection } from '../utils/connections.js';
import { describePostgres } from '../utils/database.js';

const MINUTE = 60_000;

describePostgres('POST /v1/users/{userId}/access-token', () => {
  const clock = new ManualClock();
  let sandbox: SandboxTokenEndpoint;
  let app: TestApp;
  let dataSource: DataSource;
  let cipher: TokenCipher;

  beforeAll(async () => {
    sandbox = await new SandboxTokenEndpoint(clock).start();
    app = await startTestApp({ clock, env: { ATLASSIAN_AUTH_URL: sandbox.url } });
    dataSource = app.app.get(DataSource);
    cipher = app.app.get(TokenCipher);
  }, 30_000);
  afterAll(async () => {
    await app?.close();
    await sandbox?.close();
  }, 30_000);
  beforeEach(() => {
    sandbox.idp.reset();
  });

  function post(userId: string, body?: unknown, headers: Record<string, string> = { Authorization: `Bearer ${TEST_API_KEY}` }) {
    return fetch(`${app.baseUrl}/v1/users/${encodeURIComponent(userId)}/access-token`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', ...headers },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  }

  async function connected(login: string, expiresInMs: number): Promise<{ id: string; accessToken: string }> {
    const pair = await sandbox.connect(login);
    const id = await seedConnection(dataSource, cipher, clock, {
      userId: login,
      atlassianAccountId: pair.accountId,
      accessToken: pair.accessToken,
      refreshToken: pair.refreshToken,
      accessTokenExpiresAt: new Date(clock.now().getTime() + expiresInMs),
    });
    return { id, accessToken: pair.accessToken };
  }

  it('answers the stored token while it stays valid long enough (default 60 s)', async () => {
    const { accessToken } = await connected('still-valid', 30 * MINUTE);
    const response = await post('still-valid');
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ accessToken, expiresAt: new Date(clock.now().getTime() + 30 * MINUTE).toISOString() });
    expect(sandbox.idp.stats().tokenCalls.refresh_token).toBe(0);
  });

  it('refreshes first when asked for more validity than the stored token has', async () => {
    const { id, accessToken } = await connected('needs-more', 30 * MINUTE);
    const response = await post('needs-more', { minValiditySeconds: 2400 });
    expect(response.status).toBe(200);
    const body = (await response.json()) as { accessToken: string; expiresAt: string };
    expect(body.accessToken).not.toBe(accessToken);
    expect(body.accessToken).toBe((await readConnection(dataSource, cipher, id)).accessToken);
    expect(sandbox.idp.stats()).toMatchObject({ refreshes: 1 });
  });

  it('refreshes now with forceRefresh: true, for a token Atlassian refused before its expiry', async () => {
    const { id, accessToken } = await connected('refused-early', 30 * MINUTE);
    clock.advance(1_000);
    const answers = await Promise.all([1, 2, 3].map(() => post('refused-early', { forceRefresh: true })));
    const bodies = (await Promise.all(answers.map((response) => response.json()))) as { accessToken: string }[];
    expect(answers.map((response) => response.status)).toEqual([200, 200, 200]);
    const stored = (await readConnection(dataSource, cipher, id)).accessToken;
    expect(stored).not.toBe(accessToken);
    expect(bodies.map((body) => body.accessToken)).toEqual([stored, stored, stored]);
    expect(sandbox.idp.stats()).toMatchObject({ refreshes: 1 });
  });

  it('answers 404 connection_not_found for an unknown user', async () => {
    const response = await post('nobody-here');
    expect(response.status).toBe(404);
    expect(await response.json()).toEqual({ error: { code: 'connection_not_found', message: expect.stringContaining('nobody-here') } });
  });

  it('answers 409 reauth_required for a connection that needs consent again', async () => {
    await seedConnection(dataSource, cipher, clock, {
      userId: 'gone',
      status: 'reauth_required',
      accessToken: null,
      refreshToken: null,
      accessTokenExpiresAt: null,
      dueAt: null,
    });
    const response = await post('gone');
    expect(response.status).toBe(409);
    expect(await response.json()).toEqual({ error: { code: 'reauth_required', message: expect.stringContaining('/connect') } });
  });

  it('answers 503 atlassian_unavailable with Retry-After when Atlassian fails and no valid token is left', async () => {
    await connected('unlucky', -MINUTE);
    sandbox.idp.addFault({ count: 1, endpoint: 'token', status: 503 });
    const response = await post('unlucky');
    expect(response.status).toBe(503);
    expect(Number(response.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(await response.json()).toEqual({ error: { code: 'atlassian_unavailable', message: expect.any(String) } });
  });

  it('accepts minValiditySeconds up to 3600, the life of a fresh token', async () => {
    const { accessToken } = await connected('longest', 30 * MINUTE);
    const response = await post('longest', { minValiditySeconds: 3600 });
    expect(response.status).toBe(200);
    const body = (await response.json()) as { accessToken: string; expiresAt: string };
    expect(body.accessToken).not.toBe(accessToken);
    expect(body.expiresAt).toBe(new Date(clock.now().getTime() + 60 * MINUTE).toISOString());
  });

  it.each([
    ['a string', { minValiditySeconds: 'sixty' }],
    ['a fraction', { minValiditySeconds: 1.5 }],
    ['a negative number', { minValiditySeconds: -1 }],
    ['more than 3600', { minValiditySeconds: 3601 }],
    ['an unknown field', { minValiditySeconds: 60, scope: 'write:everything' }],
    ['forceRefresh that is not a boolean', { forceRefresh: 'true' }],
  ])('answers 400 invalid_request for %s', async (_, body) => {
    const response = await post('still-valid', body);
    expect(response.status).toBe(400);
    expect(await response.json()).toEqual({ error: { code: 'invalid_request', message: expect.any(String) } });
  });

  it.each([
    ['the string "60"', { minValiditySeconds: '60' }],
    ['a fraction', { minValiditySeconds: 1.5 }],
    ['more than 3600', { minValiditySeconds: 3601 }],
  ])('refuses minValiditySeconds as %s with one message that says what is accepted', async (_, body) => {
    const response = await post('still-valid', body);
    expect(response.status).toBe(400);
    expect(await response.json()).toEqual({
      error: { code: 'invalid_request', message: 'minValiditySeconds must be a whole number of seconds from 0 to 3600' },
    });
  });

  it('answers 400 for a userId outside the allowed characters', async () => {
    const response = await post('not allowed!');
    expect(response.status).toBe(400);
    expect(((await response.json()) as { error: { code: string } }).error.code).toBe('invalid_request');
  });

  it('answers 401 without a valid API key, and never reveals the token', async () => {
    await connected('guarded', 30 * MINUTE);
    for (const headers of [{}, { Authorization: 'Bearer wrong-key-0123456789' }] as Record<string, string>[]) {
      const response = await post('guarded', {}, headers);
      expect(response.status).toBe(401);
      expect(await response.json()).toEqual({ error: { code: 'unauthorized', message: expect.any(String) } });
    }
  });

  it('answers with headers that keep it out of every cache and frame, on success and on each error', async () => {
    await connected('not-stored', 30 * MINUTE);
    const answers = [await post('not-stored'), await post('nobody-here'), await post('not-stored', {}, {})];
    expect(answers.map((response) => response.status)).toEqual([200, 404, 401]);
    for (const response of answers) {
      await response.text();
      expect(response.headers.get('cache-control')).toBe('no-store');
      expect(response.headers.get('etag')).toBeNull();
      expect(response.headers.get('content-security-policy')).toBe("default-src 'none'; frame-ancestors 'none'");
      expect(response.headers.get('x-frame-options')).toBe('DENY');
      expect(response.headers.get('x-content-type-options')).toBe('nosniff');
    }
    // Outside the API, helmet's set for documents.
    const health = await fetch(`${app.baseUrl}/health/live`);
    await health.text();
    expect(health.headers.get('x-frame-options')).toBe('DENY');
    expect(health.headers.get('x-content-type-options')).toBe('nosniff');
  });
});
