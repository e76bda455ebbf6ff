import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { startTestApp, TEST_API_KEY, type TestApp } from '../utils/app.js';

describe('request logs', () => {
  let app: TestApp;
  // Creating the embedded database on disk takes tens of seconds on a busy machine.
  beforeAll(async () => {
    app = await startTestApp({ captureLogs: true, driver: 'pglite' });
  }, 120_000);
  afterAll(() => app?.close());

  it('carry a request id, kept from the caller when sane, and never a credential', async () => {
    const secrets = ['code-SECRET-123', 'state-SECRET-456', 'ticket-SECRET-789'];
    const response = await fetch(`${app.baseUrl}/health/ready?code=${secrets[0]}&state=${secrets[1]}&ticket=${secrets[2]}&keep=visible`, {
      headers: { Authorization: `Bearer ${TEST_API_KEY}`, Cookie: 'ats_browser=cookie-SECRET', 'X-Request-Id': 'req-abc.1' },
    });
    expect(response.headers.get('x-request-id')).toBe('req-abc.1');

    const lines = app.logLines();
    const line = lines.find((l) => (l.req as { id?: string } | undefined)?.id === 'req-abc.1');
    expect(line).toBeDefined();
    expect((line!.req as { url: string }).url).toBe('/health/ready?code=[Redacted]&state=[Redacted]&ticket=[Redacted]&keep=visible');
    const text = app.logs();
    for (const secret of [...secrets, TEST_API_KEY, 'cookie-SECRET']) expect(text).not.toContain(secret);
  });

  it('make up a request id when the caller sends none or a strange one', async () => {
    const response = await fetch(`${app.baseUrl}/health/live`, { headers: { 'X-Request-Id': 'bad id with spaces' } });
    expect(response.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
  });
});
