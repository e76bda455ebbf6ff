import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { startTestApp, type TestApp } from '../utils/app.js';
import { connectLink, dataSourceOf, sandboxControl, sandboxStats } from './connect-browser.js';

async function statesOf(app: TestApp, userId: string): Promise<number> {
  const rows: { n: string }[] = await dataSourceOf(app).query(`SELECT count(*)::text AS n FROM oauth_states WHERE user_id = $1`, [userId]);
  return Number(rows[0].n);
}

describe('GET /auth/atlassian/start with an answer from Atlassian in its address', () => {
  let app: TestApp;

  beforeAll(async () => {
    app = await startTestApp();
  });
  afterAll(() => app?.close());
  beforeEach(() => sandboxControl(app, 'reset'));

  it.each([
    ['a code', '&code=some-code&state=some-state', 'code-on-start-user'],
    ['an empty code', '&code=', 'empty-code-on-start-user'],
    ['an error', '&error=access_denied&state=some-state', 'error-on-start-user'],
  ])('refuses a connect link carrying %s, exchanging nothing and leaving the ticket unspent', async (_name, extra, userId) => {
    const link = await connectLink(app, userId);
    const refused = await fetch(`${link.url}${extra}`, { redirect: 'manual' });
    expect(refused.status).toBe(400);
    expect(refused.headers.get('content-type')).toMatch(/^text\/html/);
    expect(await refused.text()).toContain('This sign-in address is malformed');
    expect(refused.headers.getSetCookie()).toEqual([]);
    expect((await sandboxStats(app)).tokenCalls.authorization_code).toBe(0);
    expect(await statesOf(app, userId)).toBe(0);

    const started = await fetch(link.url, { redirect: 'manual' });
    expect(started.status).toBe(302);
    expect(await statesOf(app, userId)).toBe(1);
  });
});
