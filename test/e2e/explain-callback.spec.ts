import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { runCli } from '../../src/cli/cli.js';
import { SystemClock } from '../../src/common/clock.js';
import { startTestApp, TEST_API_KEY, type TestApp } from '../utils/app.js';
import { consent, sandboxControl, startSignIn, TestBrowser } from './connect-browser.js';

// Creating the embedded database on disk takes tens of seconds on a busy machine.
const SETUP_TIMEOUT_MS = 120_000;

/** explain-callback on callbacks of real sign-ins with the built-in sandbox, the service running beside it. */
describe('explain-callback on real sign-ins', () => {
  let app: TestApp;
  let env: Record<string, string>;

  beforeAll(async () => {
    app = await startTestApp({ driver: 'pglite' });
    env = { PORT: new URL(app.baseUrl).port, PUBLIC_URL: app.baseUrl, API_KEYS: TEST_API_KEY };
  }, SETUP_TIMEOUT_MS);
  afterAll(() => app?.close(), SETUP_TIMEOUT_MS);

  async function explain(...argv: string[]): Promise<{ code: number; output: string }> {
    const lines: string[] = [];
    const code = await runCli(['explain-callback', ...argv], {
      env,
      clock: new SystemClock(),
      dataDir: app.config.dataDir,
      print: (line) => lines.push(line),
    });
    return { code, output: lines.join('\n') };
  }

  it('a Deny the service already handled: no code was ever presented', async () => {
    const browser = new TestBrowser(app);
    const { authorizeUrl } = await startSignIn(app, browser, 'declining-user');
    const callbackUrl = await consent(authorizeUrl, 'deny');
    expect((await browser.get(callbackUrl)).status).toBe(403);

    const { output } = await explain(callbackUrl.toString());
    expect(output).toMatch(
      /⚠ Already used \d+ s ago \(outcome: access_denied\): Atlassian sent an error instead of a code, so no code was presented/,
    );
    expect(output).not.toContain('its code was presented');
  });

  it('--exchange after the sandbox forgot its codes says so, instead of blaming the code or the redirect_uri', async () => {
    const { authorizeUrl } = await startSignIn(app, new TestBrowser(app), 'forgotten-user');
    const callbackUrl = await consent(authorizeUrl, { user: 'alice' });
    await sandboxControl(app, 'reset');

    const { code, output } = await explain(callbackUrl.toString(), '--exchange');
    expect(output).toMatch(
      /✗ The sandbox forgot this code: it started again \d+ s ago \(.+\), after this sign-in began \d+ s ago, and it keeps its codes in memory only/,
    );
    expect(output).not.toMatch(/likely: |possible: /);
    expect(output).not.toContain(callbackUrl.searchParams.get('code')!);
    expect(code).toBe(1);
  });
});
