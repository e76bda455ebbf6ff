import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { AtlassianClient } from '../../src/atlassian/atlassian.client.js';
import { verifyCredentials } from '../../src/cli/doctor.checks.js';
import { loadConfig, SANDBOX_CREDENTIALS } from '../../src/config/app-config.js';
import { freePort, startTestApp, type TestApp } from '../utils/app.js';
import { sandboxStats } from './connect-browser.js';

/** doctor's credentials check against a token endpoint that behaves as Atlassian's: the built-in sandbox. */
describe('doctor checks the client id and secret with one call to the token endpoint', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startTestApp();
  });
  afterAll(() => app?.close());

  async function check(secret: string, authUrl = `${app.baseUrl}/sandbox`) {
    const config = loadConfig(
      { ATLASSIAN_CLIENT_ID: SANDBOX_CREDENTIALS.clientId, ATLASSIAN_CLIENT_SECRET: secret, ATLASSIAN_AUTH_URL: authUrl },
      { dataDir: app.config.dataDir },
    );
    return verifyCredentials(config, (code) => new AtlassianClient(config, { timeoutMs: 5_000 }).exchangeCode(code));
  }

  it('tells a right secret from a wrong one, and issues nothing', async () => {
    const before = await sandboxStats(app);
    expect(await check(SANDBOX_CREDENTIALS.clientSecret)).toMatchObject({
      status: 'ok',
      text: expect.stringContaining('only the made-up code sent to check them was refused (403 invalid_grant)'),
    });
    expect(await check('not-the-secret')).toMatchObject({
      status: 'fail',
      text: 'Atlassian refused the client id and secret (401 access_denied): ATLASSIAN_CLIENT_SECRET or ATLASSIAN_CLIENT_ID is wrong',
    });
    const after = await sandboxStats(app);
    expect(after.tokenCalls.authorization_code - before.tokenCalls.authorization_code).toBe(2);
    expect(after.codesExchanged).toBe(before.codesExchanged);
  });

  it('says plainly when the token endpoint cannot be reached', async () => {
    const closed = `http://127.0.0.1:${await freePort()}`;
    expect(await check(SANDBOX_CREDENTIALS.clientSecret, closed)).toMatchObject({
      status: 'warn',
      text: `Atlassian credentials not checked: ${closed}/oauth/token could not be reached (Atlassian could not be reached (ECONNREFUSED))`,
    });
  });
});
