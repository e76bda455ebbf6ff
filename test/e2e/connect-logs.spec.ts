import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { TokenCipher } from '../../src/crypto/token-cipher.js';
import { startTestApp, type TestApp } from '../utils/app.js';
import { connectionRows, connectUser } from './connect-browser.js';

// A file of its own: nestjs-pino keeps one root logger per module registry, so only the first app started in a
// test file writes to its captured destination.
describe('logs of a whole connect', () => {
  let app: TestApp;

  beforeAll(async () => {
    app = await startTestApp({ captureLogs: true });
  });
  afterAll(() => app?.close());

  it('never contain a token, code, state, ticket or browser cookie', async () => {
    const { response, signIn, callbackUrl, browser } = await connectUser(app, 'logged-user', 'alice');
    expect(response.status).toBe(200);
    const reload = await browser.get(callbackUrl);
    expect(reload.status).toBe(200);
    const [row] = await connectionRows(app, 'logged-user');
    const cipher = app.app.get(TokenCipher);
    const rowId = row.id as string;
    const accessToken = cipher.open(
      { ciphertext: row.access_token_ciphertext as string, keyId: row.access_token_key_id as string },
      { table: 'connections', rowId, column: 'access_token' },
    );
    const refreshToken = cipher.open(
      { ciphertext: row.refresh_token_ciphertext as string, keyId: row.refresh_token_key_id as string },
      { table: 'connections', rowId, column: 'refresh_token' },
    );
    const logs = app.logs();
    expect(logs).toContain('Connected user logged-u');
    expect(logs).toContain('opened again by the browser that finished it (connected)');
    const secrets = {
      accessToken,
      refreshToken,
      code: callbackUrl.searchParams.get('code')!,
      state: signIn.state,
      ticket: signIn.ticket,
      cookie: browser.cookie('atlassian_connect_browser')!,
    };
    for (const [name, secret] of Object.entries(secrets)) {
      expect({ name, found: logs.includes(secret) }).toEqual({ name, found: false });
    }
  });
});
