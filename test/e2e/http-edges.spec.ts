import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { errorOf } from '../utils/api.js';
import { startTestApp, TEST_API_KEY, type TestApp } from '../utils/app.js';
import { rawRequest, type RawAnswer } from '../utils/raw-http.js';

/** GET `path` as written, with `headers` as given (repeated ones included). */
function get(app: TestApp, path: string, headers: [string, string][] = []): Promise<RawAnswer> {
  return rawRequest(Number(new URL(app.baseUrl).port), { method: 'GET', path, headers });
}

describe('the edges of the HTTP contract', () => {
  let app: TestApp;

  beforeAll(async () => {
    app = await startTestApp();
  }, 60_000);
  afterAll(() => app?.close());

  it.each(['bearer', 'BEARER', 'Bearer  '])('takes the auth scheme in any case (RFC 7235): "%s"', async (scheme) => {
    const response = await fetch(`${app.baseUrl}/v1/connections`, { headers: { Authorization: `${scheme} ${TEST_API_KEY}` } });
    expect(response.status).toBe(200);
  });

  it('refuses a request with two Authorization headers, whichever comes first', async () => {
    for (const keys of [
      [TEST_API_KEY, 'another-key-0123456789abcdef'],
      ['another-key-0123456789abcdef', TEST_API_KEY],
    ]) {
      const answer = await get(
        app,
        '/v1/connections',
        keys.map((key) => ['Authorization', `Bearer ${key}`]),
      );
      expect(answer.status).toBe(400);
      expect(JSON.parse(answer.body)).toEqual({
        error: { code: 'invalid_request', message: expect.stringContaining('one Authorization header') },
      });
    }
  });

  it("answers headers over 16 KB with 431 in the API's shape on the API's paths, in plain text elsewhere", async () => {
    const padding: [string, string] = ['X-Padding', 'p'.repeat(20_000)];
    const api = await get(app, '/v1/connections', [['Authorization', `Bearer ${TEST_API_KEY}`], padding]);
    expect(api.status).toBe(431);
    expect(api.headers['content-type']).toBe('application/json; charset=utf-8');
    expect(api.headers['cache-control']).toBe('no-store');
    expect(JSON.parse(api.body)).toEqual({ error: { code: 'invalid_request', message: expect.stringContaining('16 KB') } });

    const page = await get(app, '/health/live', [padding]);
    expect(page.status).toBe(431);
    expect(page.headers['content-type']).toBe('text/plain; charset=utf-8');
  });

  it.each([
    ['arrays', `${'['.repeat(50_000)}${']'.repeat(50_000)}`],
    ['objects', `${'{"a":'.repeat(16_000)}1${'}'.repeat(16_000)}`],
  ])('refuses a 100 KB body of nested %s with 400 invalid_request, before validation', async (_, body) => {
    const response = await fetch(`${app.baseUrl}/v1/users/someone/access-token`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${TEST_API_KEY}`, 'Content-Type': 'application/json' },
      body,
    });
    expect(response.status).toBe(400);
    expect(await response.json()).toEqual({ error: { code: 'invalid_request', message: expect.stringContaining('deeper than 64') } });
  });

  it('refuses an API body that is not JSON with 415, before reading it', async () => {
    for (const [type, body] of [
      ['text/plain', '{"forceRefresh":true}'],
      ['application/x-www-form-urlencoded', 'forceRefresh=true'],
      ['multipart/form-data; boundary=x', '--x--'],
    ]) {
      const response = await fetch(`${app.baseUrl}/v1/users/someone/access-token`, {
        method: 'POST',
        headers: { Authorization: `Bearer ${TEST_API_KEY}`, 'Content-Type': type },
        body,
      });
      expect({ type, answer: await errorOf(response) }).toEqual({ type, answer: [415, 'invalid_request'] });
    }
    const withoutBody = await fetch(`${app.baseUrl}/v1/users/someone/connect`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${TEST_API_KEY}` },
    });
    expect(withoutBody.status).toBe(201);
  });

  it('frames no page: the browser routes say so in CSP and X-Frame-Options alike, and so do other pages', async () => {
    const page = await fetch(`${app.baseUrl}/auth/atlassian/start`);
    await page.text();
    expect(page.headers.get('content-security-policy')).toContain("frame-ancestors 'none'");
    expect(page.headers.get('x-frame-options')).toBe('DENY');
    for (const path of ['/docs', '/health/live']) {
      const other = await fetch(`${app.baseUrl}${path}`);
      await other.text();
      expect({ path, frame: other.headers.get('x-frame-options') }).toEqual({ path, frame: 'DENY' });
    }
  });

  it('keeps the API docs out of caches', async () => {
    for (const path of ['/docs', '/docs-json']) {
      const response = await fetch(`${app.baseUrl}${path}`);
      await response.text();
      expect({ path, cacheControl: response.headers.get('cache-control') }).toEqual({ path, cacheControl: 'no-store' });
    }
  });

  it('sends no Strict-Transport-Security when PUBLIC_URL is plain http', async () => {
    for (const path of ['/v1/connections', '/auth/atlassian/start', '/health/live', '/docs']) {
      const response = await fetch(`${app.baseUrl}${path}`, { headers: { Authorization: `Bearer ${TEST_API_KEY}` } });
      await response.text();
      expect({ path, hsts: response.headers.get('strict-transport-security') }).toEqual({ path, hsts: null });
    }
  });
});

describe('behind https', () => {
  let app: TestApp;

  beforeAll(async () => {
    app = await startTestApp({ env: { PUBLIC_URL: 'https://tokens.example.com' } });
  }, 60_000);
  afterAll(() => app?.close());

  it('sends Strict-Transport-Security on every answer, refusals by Node included', async () => {
    for (const path of ['/v1/connections', '/auth/atlassian/start', '/health/live']) {
      const response = await fetch(`${app.baseUrl}${path}`, { headers: { Authorization: `Bearer ${TEST_API_KEY}` } });
      await response.text();
      expect({ path, hsts: response.headers.get('strict-transport-security') }).toEqual({
        path,
        hsts: 'max-age=31536000; includeSubDomains',
      });
    }
    const refused = await get(app, '/v1/connections', [['X-Padding', 'p'.repeat(20_000)]]);
    expect(refused.headers['strict-transport-security']).toBe('max-age=31536000; includeSubDomains');
  });
});
