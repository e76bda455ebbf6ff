import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { startTestApp, type TestApp } from '../utils/app.js';

describe('the service’s own address', () => {
  describe('in sandbox mode', () => {
    let app: TestApp;
    beforeAll(async () => {
      app = await startTestApp();
    });
    afterAll(() => app?.close());

    it('answers GET / with a small page: what this is, the API docs, and the tour', async () => {
      const response = await fetch(`${app.baseUrl}/`);
      expect(response.status).toBe(200);
      expect(response.headers.get('content-type')).toMatch(/^text\/html/);
      expect(response.headers.get('content-security-policy')).toContain("default-src 'none'");
      const html = await response.text();
      expect(html).toContain('<h1>Atlassian token service</h1>');
      expect(html).toContain('sandbox');
      expect(html).toContain('href="/docs"');
      expect(html).toContain('Try it in 2 minutes');
      expect(html).toContain(`${app.baseUrl}/v1/users/demo-user/connect`);
    });

    it('answers an address that is no route with the API’s error shape', async () => {
      const response = await fetch(`${app.baseUrl}/no-such-page`);
      expect(response.status).toBe(404);
      expect(await response.json()).toEqual({ error: { code: 'not_found', message: 'Cannot GET /no-such-page' } });
    });
  });

  describe('with a real Atlassian app', () => {
    let app: TestApp;
    beforeAll(async () => {
      app = await startTestApp({ env: { ATLASSIAN_CLIENT_ID: 'client-id', ATLASSIAN_CLIENT_SECRET: 'client-secret-value' } });
    });
    afterAll(() => app?.close());

    it('answers GET / with what this is and where the API is described, and nothing about a sandbox', async () => {
      const response = await fetch(`${app.baseUrl}/`);
      expect(response.status).toBe(200);
      const html = await response.text();
      expect(html).toContain('href="/docs"');
      expect(html).not.toContain('sandbox');
    });
  });
});
