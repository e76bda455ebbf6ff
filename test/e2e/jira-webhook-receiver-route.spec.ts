import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import type { Express } from 'express';
import { JiraWebhookReceiver } from '../../src/jira-webhooks/jira-webhook.receiver.js';
import { startTestApp, type TestApp } from '../utils/app.js';

interface Layer {
  readonly name: string;
  readonly route?: { readonly path: string };
}

/**
 * Jira's deliveries have a route of their own, ahead of the API's middleware and Nest's routes (see
 * mountJiraWebhookReceiver); it must still be what every other route is to an operator.
 */
describe("the Jira webhook receiver's route", () => {
  let app: TestApp;

  beforeAll(async () => {
    app = await startTestApp({ captureLogs: true });
  }, 60_000);
  afterAll(() => app?.close());

  const send = (headers: Record<string, string>) =>
    fetch(`${app.baseUrl}/atlassian/jira-webhooks`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', ...headers },
      body: '{}',
    });

  it("comes before the application's middleware and every other route", () => {
    const layers = (app.app.getHttpAdapter().getInstance() as Express).router.stack as Layer[];
    const receiver = layers.findIndex((layer) => layer.route?.path === '/atlassian/jira-webhooks');
    const firstOther = Math.min(
      layers.findIndex((layer) => layer.name === 'jsonParser'),
      layers.findIndex((layer) => layer.route && layer.route.path !== '/atlassian/jira-webhooks'),
    );
    expect(receiver).toBeGreaterThanOrEqual(0);
    expect(receiver).toBeLessThan(firstOther);
  });

  it('writes its request log line with the caller X-Request-Id, and is timed under its route in the HTTP metrics', async () => {
    const refused = await send({ 'X-Request-Id': 'jira-delivery-1' });
    expect(refused.status).toBe(401);
    expect(refused.headers.get('x-request-id')).toBe('jira-delivery-1');
    expect(await refused.json()).toEqual({ error: { code: 'unauthorized', message: expect.any(String) } });
    const line = app.logLines().find((entry) => (entry.req as { id?: string } | undefined)?.id === 'jira-delivery-1' && entry.res);
    expect(line).toMatchObject({
      req: { method: 'POST', url: '/atlassian/jira-webhooks' },
      res: { statusCode: 401 },
      msg: 'request completed',
    });

    const metrics = await (await fetch(`${app.baseUrl}/metrics`)).text();
    expect(metrics).toMatch(
      /http_request_duration_seconds_count\{method="POST",route="\/atlassian\/jira-webhooks",status_code="401"\} 1\n/,
    );
  });

  it('answers a request it cannot take through the application error handling', async () => {
    const garbled = await send({ 'Content-Encoding': 'compress' });
    expect(garbled.status).toBe(415);
    expect(app.logLines().some((entry) => (entry.res as { statusCode?: number } | undefined)?.statusCode === 415)).toBe(true);
  });

  it('answers 500 through the application error handling when the delivery cannot be recorded, and keeps serving', async () => {
    const receive = jest.spyOn(app.app.get(JiraWebhookReceiver), 'receive').mockRejectedValueOnce(new Error('the database is gone'));
    try {
      expect((await send({})).status).toBe(500);
      expect((await send({})).status).toBe(401);
    } finally {
      receive.mockRestore();
    }
  });
});
