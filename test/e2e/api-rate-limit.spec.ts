import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { callApi, errorOf, userPath } from '../utils/api.js';
import { startTestApp, TEST_API_KEY, type TestApp } from '../utils/app.js';
import { ManualClock } from '../utils/connections.js';
import { describePostgres } from '../utils/database.js';

const LIMIT = 3;
const OTHER_KEY = 'second-api-key-for-rotation-0123';

describePostgres('rate limiting per API key', () => {
  const clock = new ManualClock();
  let app: TestApp;

  beforeAll(async () => {
    app = await startTestApp({
      clock,
      captureLogs: true,
      env: { API_RATE_LIMIT_PER_MINUTE: String(LIMIT), API_KEYS: `${TEST_API_KEY},${OTHER_KEY}` },
    });
  });
  afterAll(() => app?.close());

  const lookup = (key: string | null = TEST_API_KEY) => callApi(app, 'GET', userPath('someone', '/connection'), { key });

  it('answers 429 rate_limited with Retry-After once a key spent its budget, across all /v1 routes', async () => {
    const first = await lookup();
    expect(first.status).toBe(404);
    expect(first.headers.get('x-ratelimit-limit')).toBe(String(LIMIT));
    expect(first.headers.get('x-ratelimit-remaining')).toBe(String(LIMIT - 1));
    expect((await callApi(app, 'GET', '/v1/connections')).status).toBe(200);
    expect((await callApi(app, 'POST', userPath('someone', '/access-token'))).status).toBe(404);

    clock.advance(20_000);
    const limited = await lookup();
    expect(await errorOf(limited)).toEqual([429, 'rate_limited']);
    expect(limited.headers.get('retry-after')).toBe('40');
    expect((await callApi(app, 'GET', '/v1/connections')).status).toBe(429);
  });

  it('gives every API key its own budget, and refuses a wrong key with 401, not 429', async () => {
    expect((await lookup(OTHER_KEY)).status).toBe(404);
    expect(await errorOf(await lookup('not-one-of-the-keys-0123456789'))).toEqual([401, 'unauthorized']);
    expect(await errorOf(await lookup(null))).toEqual([401, 'unauthorized']);
  });

  it('does not limit health, metrics, docs or the sandbox', async () => {
    for (const path of ['/health/live', '/metrics', '/docs-json', '/sandbox/_control/stats']) {
      for (let i = 0; i <= LIMIT; i++) {
        const response = await fetch(`${app.baseUrl}${path}`);
        await response.arrayBuffer();
        expect({ path, status: response.status }).toEqual({ path, status: 200 });
      }
    }
  });

  it('lets the key call again when the minute is over', async () => {
    clock.advance(40_000);
    expect((await lookup()).status).toBe(404);
  });

  it('never logs an API key', () => {
    const logs = app.logs();
    expect(logs.length).toBeGreaterThan(0);
    expect(logs).not.toContain(TEST_API_KEY);
    expect(logs).not.toContain(OTHER_KEY);
  });
});

describePostgres('API_RATE_LIMIT_PER_MINUTE=0', () => {
  let app: TestApp;

  beforeAll(async () => {
    app = await startTestApp({ env: { API_RATE_LIMIT_PER_MINUTE: '0' } });
  });
  afterAll(() => app?.close());

  it('turns the limit off but still refuses a wrong key', async () => {
    for (let i = 0; i < 5; i++) {
      const response = await callApi(app, 'GET', userPath('someone', '/connection'));
      expect(response.status).toBe(404);
      expect(response.headers.get('x-ratelimit-limit')).toBeNull();
    }
    expect(await errorOf(await callApi(app, 'GET', userPath('someone', '/connection'), { key: 'not-one-of-the-keys-0123456789' }))).toEqual(
      [401, 'unauthorized'],
    );
  });
});
