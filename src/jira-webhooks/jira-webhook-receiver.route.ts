import type { INestApplication } from '@nestjs/common';
import express, { type Express, type NextFunction, type Request, type RequestHandler, type Response } from 'express';
import { JIRA_WEBHOOK_MAX_BODY_BYTES, JiraWebhookReceiver, type ReceiverAnswer } from './jira-webhook.receiver.js';
import { JIRA_WEBHOOK_RECEIVER_PATH } from './jira-webhooks.service.js';

/** What every request gets that a delivery gets too: the request log line and the HTTP metrics. */
export interface ReceiverRouteOptions {
  readonly requestLog: RequestHandler;
  readonly httpMetrics: RequestHandler;
}

/**
 * Where Jira delivers (`POST PUBLIC_URL/atlassian/jira-webhooks`): Jira's caller, not the SaaS backend's, so no API
 * key. The route is Express's, added before the application's middleware and Nest's routes, because a delivery needs
 * none of them (the API's key check, pacing and headers, the JSON and form parsers, Nest's guards, pipes and route
 * table), and skipping them took the service's CPU per delivery from 211–226 to 132–138 µs (docs/benchmarks.md, "Jira
 * webhook receiver"). It keeps what every request has: its line in the request log, its X-Request-Id, the HTTP metrics
 * under its own route, and Nest's error handling (an error is passed on to the application's exception filter, which
 * answers it as it did when this was a Nest controller).
 */
export function mountJiraWebhookReceiver(app: INestApplication, options: ReceiverRouteOptions): void {
  const receiver = app.get(JiraWebhookReceiver);
  const server = app.getHttpAdapter().getInstance() as Express;
  server.post(
    JIRA_WEBHOOK_RECEIVER_PATH,
    options.requestLog,
    options.httpMetrics,
    // The body is read as bytes, up to a limit (413 above it), and parsed only once its JWT is verified.
    express.raw({ type: () => true, limit: JIRA_WEBHOOK_MAX_BODY_BYTES }),
    (req: Request, res: Response, next: NextFunction) => {
      const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
      receiver
        .receive(header(req, 'authorization'), header(req, 'x-atlassian-webhook-identifier'), body)
        .then((answer) => send(res, answer))
        .catch(next);
    },
  );
}

function send(res: Response, answer: ReceiverAnswer): void {
  res.status(answer.status).set('Cache-Control', 'no-store');
  if (answer.status === 401)
    res.set('WWW-Authenticate', 'Bearer').json({ error: { code: 'unauthorized', message: 'No valid JWT from Jira.' } });
  else if (answer.status === 400) res.json({ error: { code: 'invalid_request', message: 'The body is not a Jira webhook event.' } });
  else res.end();
}

function header(req: Request, name: string): string | undefined {
  const value = req.headers[name];
  return typeof value === 'string' ? value : undefined;
}
