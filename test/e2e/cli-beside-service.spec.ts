import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { runCli } from '../../src/cli/cli.js';
import { openCommandContext } from '../../src/cli/cli-database.js';
import { SystemClock } from '../../src/common/clock.js';
import { loadConfig } from '../../src/config/app-config.js';
import { EmbeddedDatabaseBusyError } from '../../src/database/embedded-lock.js';
import { startTestApp, TEST_API_KEY, type TestApp } from '../utils/app.js';
import { connectUser, startSignIn, TestBrowser } from './connect-browser.js';

// Creating the embedded database on disk takes tens of seconds on a busy machine.
const SETUP_TIMEOUT_MS = 120_000;

/** The service on the embedded database under its own ./data, and the operator's commands run beside it. */
describe('the CLI beside a service on the embedded database', () => {
  let app: TestApp;
  let env: Record<string, string>;

  beforeAll(async () => {
    app = await startTestApp({ driver: 'pglite' });
    const port = new URL(app.baseUrl).port;
    env = { PORT: port, PUBLIC_URL: app.baseUrl, API_KEYS: TEST_API_KEY };
  }, SETUP_TIMEOUT_MS);
  afterAll(() => app?.close(), SETUP_TIMEOUT_MS);

  async function cli(argv: string[], overrides: Record<string, string> = {}): Promise<{ code: number; output: string }> {
    const lines: string[] = [];
    const code = await runCli(argv, {
      env: { ...env, ...overrides },
      clock: new SystemClock(),
      dataDir: app.config.dataDir,
      print: (line) => lines.push(line),
    });
    return { code, output: lines.join('\n') };
  }

  it('cannot open the database the service holds', async () => {
    const config = loadConfig(env, { dataDir: app.config.dataDir });
    await expect(openCommandContext(config, new SystemClock())).rejects.toThrow(EmbeddedDatabaseBusyError);
  });

  it('connections: counts what the service stores, asking the service', async () => {
    for (const [userId, login] of [
      ['cli-user-1', 'alice'],
      ['cli-user-2', 'bob'],
      ['cli-user-3', 'carol'],
    ]) {
      expect((await connectUser(app, userId, login)).response.status).toBe(200);
    }
    const listed = (await (
      await fetch(`${app.baseUrl}/v1/connections`, { headers: { Authorization: `Bearer ${TEST_API_KEY}` } })
    ).json()) as {
      items: unknown[];
    };
    expect(listed.items).toHaveLength(3);

    const { code, output } = await cli(['connections']);
    expect(output).toContain('Connections: 3\n  active                  3');
    expect(code).toBe(0);
  });

  it('explain-callback: finds a state issued a moment ago, unused', async () => {
    const { authorizeUrl, state } = await startSignIn(app, new TestBrowser(app), 'cli-explained-user');
    const callback = `${app.baseUrl}/auth/atlassian/callback?code=some-code-value-0123&state=${state}`;
    expect(authorizeUrl.searchParams.get('redirect_uri')).toBe(`${app.baseUrl}/auth/atlassian/callback`);

    const { code, output } = await cli(['explain-callback', callback]);
    expect(output).toContain('✓ Known: sign-in started 0 s ago');
    expect(output).toContain('for user "cli-explained-user"');
    expect(output).toContain('✓ Not used yet');
    expect(output).not.toContain(state);
    expect(code).toBe(0);
  });

  it("explain-callback: judges the callback by the running service's addresses when this command was started with others", async () => {
    const { state } = await startSignIn(app, new TestBrowser(app), 'cli-drift-user');
    const callback = `${app.baseUrl}/auth/atlassian/callback?code=some-code-value-0123&state=${state}`;
    const { code, output } = await cli(['explain-callback', callback], { PORT: '3300', PUBLIC_URL: '' });
    expect(output).toContain(
      `⚠ The running service (pid ${process.pid}) was started with another configuration: its callback URL is ${app.baseUrl}/auth/atlassian/callback, this command's http://localhost:3300/auth/atlassian/callback.`,
    );
    expect(output).toContain('✓ The location is ATLASSIAN_CALLBACK_URL');
    expect(output).toContain('(equals ATLASSIAN_CALLBACK_URL)');
    expect(code).toBe(0);
  });

  it('doctor: reaches the database through the service', async () => {
    const { output } = await cli(['doctor']);
    expect(output).toContain(
      `✓ Database reachable: the embedded database under ${app.config.database.pgliteDir}, through the running service (pid ${process.pid})`,
    );
    expect(output).toMatch(/✓ All \d+ migrations applied/);
  });

  it('rotate-keys: refuses in one sentence that says what to do', async () => {
    const { code, output } = await cli(['rotate-keys']);
    expect(output).toBe(
      `✗ rotate-keys rewrites every token itself, and the running service (pid ${process.pid}) holds the embedded database under ${app.config.database.pgliteDir}: stop the service (Ctrl-C where npm start runs), run rotate-keys, then start it again.`,
    );
    expect(code).toBe(1);
  });

  it('the operator routes do not exist on the HTTP port', async () => {
    for (const path of ['/operator/service', '/operator/refresh-status', `/operator/oauth-states/${'a'.repeat(64)}`]) {
      expect((await fetch(`${app.baseUrl}${path}`)).status).toBe(404);
    }
  });
});
