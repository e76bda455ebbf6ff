import { randomBytes } from 'node:crypto';
import { beforeAll, describe, expect, it } from '@jest/globals';
import { type ArgumentsHost, Logger } from '@nestjs/common';
import type { Response } from 'express';
import { loadConfig } from '../config/app-config.js';
import { ConnectFailure } from './connect-failure.js';
import { ConnectPageFilter } from './connect-page.filter.js';
import { ConnectResultSender } from './connect-result.sender.js';

/** What the filter did to the response: a page (status, body) or a redirect. */
function fakeResponse() {
  const sent: { status?: number; body?: string; redirect?: string } = {};
  const response = {
    getHeader: (name: string) => (name === 'X-Request-Id' ? 'req-42' : undefined),
    status(code: number) {
      sent.status = code;
      return this;
    },
    type() {
      return this;
    },
    send(body: string) {
      sent.body = body;
      return this;
    },
    redirect(status: number, location: string) {
      sent.status = status;
      sent.redirect = location;
    },
  };
  const host = {
    switchToHttp: () => ({ getResponse: () => response as unknown as Response, getRequest: () => ({ path: '/auth/atlassian/callback' }) }),
  } as unknown as ArgumentsHost;
  return { host, sent };
}

function filterWith(env: Record<string, string> = {}): ConnectPageFilter {
  const config = loadConfig({ TOKEN_ENCRYPTION_KEYS: `k:${randomBytes(32).toString('base64')}`, ...env });
  return new ConnectPageFilter(new ConnectResultSender(config));
}

describe('ConnectPageFilter', () => {
  beforeAll(() => Logger.overrideLogger(false));

  it('shows a refusal on a page with its status and the request id', () => {
    const { host, sent } = fakeResponse();
    filterWith().catch(new ConnectFailure('state_expired', 'Too slow.'), host);
    expect(sent.status).toBe(400);
    expect(sent.body).toContain('This sign-in took too long');
    expect(sent.body).toContain('Reference: req-42 · error state_expired');
  });

  it('turns an unexpected error into a 500 page that says nothing of the error', () => {
    const { host, sent } = fakeResponse();
    filterWith().catch(new Error('duplicate key value violates unique constraint "connections_user_id_key"'), host);
    expect(sent.status).toBe(500);
    expect(sent.body).toContain('Something went wrong on our side');
    expect(sent.body).not.toContain('duplicate key');
  });

  it('redirects to CONNECT_FAILURE_URL with the error code when it is set', () => {
    const { host, sent } = fakeResponse();
    filterWith({ CONNECT_FAILURE_URL: 'https://saas.example/connect/failed?tenant=7' }).catch(
      new ConnectFailure('invalid_grant', 'x'),
      host,
    );
    expect(sent).toEqual({ status: 302, redirect: 'https://saas.example/connect/failed?tenant=7&error=invalid_grant' });
  });
});
