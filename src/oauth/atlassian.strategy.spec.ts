import { randomBytes } from 'node:crypto';
import { describe, expect, it } from '@jest/globals';
import type { ExecutionContext } from '@nestjs/common';
import type { Request, Response } from 'express';
import type { AtlassianClient } from '../atlassian/atlassian.client.js';
import { loadConfig } from '../config/app-config.js';
import { AtlassianStartGuard } from './atlassian-auth.guards.js';
import { AtlassianStrategy } from './atlassian.strategy.js';
import { BROWSER_COOKIE } from './browser-cookie.js';
import type { CallbackService } from './callback.service.js';
import { ConnectFailure } from './connect-failure.js';
import type { ConnectTicketsService } from './connect-tickets.service.js';
import { OAuthStateStore } from './oauth-state.store.js';
import type { OAuthStatesService } from './oauth-states.service.js';

const BROWSER = 'browser-secret-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa';

/** The start as the guard runs it: the strategy registered with passport, a store whose next state is `state`. */
function startFor(env: Record<string, string>, state = 'the-state') {
  const config = loadConfig({ TOKEN_ENCRYPTION_KEYS: `k:${randomBytes(32).toString('base64')}`, ...env });
  const issued: { userId: string; browser: string }[] = [];
  const tickets = { redeem: async (ticket: string) => `user-of-${ticket}` };
  const states = {
    issue: async (userId: string, browser: string) => {
      issued.push({ userId, browser });
      return state;
    },
  };
  const secrets = { secret: () => BROWSER };
  const store = new OAuthStateStore(tickets as unknown as ConnectTicketsService, states as unknown as OAuthStatesService, secrets, config);
  const strategy = new AtlassianStrategy(config, store, {} as CallbackService, {} as AtlassianClient);
  return { issued, start: (query: Record<string, string>) => start(strategy, query) };
}

interface Started {
  readonly status: number;
  readonly location: string;
  readonly cookies: Record<string, string>;
}

/** Runs AtlassianStartGuard on a request; answers the redirect it wrote, or rejects with its refusal. */
function start(strategy: AtlassianStrategy, query: Record<string, string>): Promise<Started> {
  return new Promise<Started>((resolve, reject) => {
    const headers: Record<string, string> = {};
    const cookies: Record<string, string> = {};
    const res = {
      statusCode: 200,
      setHeader: (name: string, value: string) => (headers[name.toLowerCase()] = value),
      cookie: (name: string, value: string) => (cookies[name] = value),
      end: () => resolve({ status: res.statusCode, location: headers.location, cookies }),
    };
    const req = { query, cookies: {}, res };
    const context = {
      switchToHttp: () => ({ getRequest: () => req as unknown as Request, getResponse: () => res as unknown as Response }),
    };
    const running = new AtlassianStartGuard(strategy).canActivate(context as unknown as ExecutionContext) as Promise<boolean>;
    running.then(() => reject(new Error('the start reached its handler instead of redirecting')), reject);
  });
}

describe('AtlassianStrategy', () => {
  it('builds Atlassian’s authorization URL with every parameter', async () => {
    const { start } = startFor({
      ATLASSIAN_CLIENT_ID: 'client-123',
      ATLASSIAN_CLIENT_SECRET: 'secret-456',
      ATLASSIAN_CALLBACK_URL: 'https://tokens.example.com/auth/atlassian/callback/',
      ATLASSIAN_SCOPES: 'read:jira-work read:jira-user',
    });
    const started = await start({ ticket: 't1' });
    expect(started.status).toBe(302);
    const url = new URL(started.location);
    expect(`${url.origin}${url.pathname}`).toBe('https://auth.atlassian.com/authorize');
    expect(Object.fromEntries(url.searchParams)).toEqual({
      audience: 'api.atlassian.com',
      client_id: 'client-123',
      scope: 'read:jira-work read:jira-user offline_access read:me',
      redirect_uri: 'https://tokens.example.com/auth/atlassian/callback/',
      state: 'the-state',
      response_type: 'code',
      prompt: 'consent',
    });
    expect(url.search).not.toContain('secret-456');
  });

  it('encodes the scope with %20 and the redirect_uri in full', async () => {
    const { start } = startFor({
      ATLASSIAN_CLIENT_ID: 'c',
      ATLASSIAN_CLIENT_SECRET: 's',
      ATLASSIAN_CALLBACK_URL: 'https://x.example/cb?tenant=a&b=c',
    });
    const { location } = await start({ ticket: 't1' });
    expect(location).toContain('scope=read%3Ajira-work%20offline_access%20read%3Ame');
    expect(location).toContain(`redirect_uri=${encodeURIComponent('https://x.example/cb?tenant=a&b=c')}`);
  });

  it('points at the sandbox when no client id is set', async () => {
    const { start } = startFor({ PUBLIC_URL: 'http://localhost:3000' });
    expect((await start({ ticket: 't1' })).location.startsWith('http://localhost:3000/sandbox/authorize?')).toBe(true);
  });

  it('binds the state to the ticket’s userId and to the browser cookie it sets', async () => {
    const { start, issued } = startFor({ PUBLIC_URL: 'http://localhost:3000' });
    const started = await start({ ticket: 't1' });
    expect(started.cookies).toEqual({ [BROWSER_COOKIE]: BROWSER });
    expect(issued).toEqual([{ userId: 'user-of-t1', browser: BROWSER }]);
  });

  it.each([[{ ticket: 't1', code: 'c' }], [{ ticket: 't1', code: '' }], [{ ticket: 't1', error: 'access_denied', state: 's' }]])(
    'refuses a start link carrying an answer from Atlassian (%j), storing no state',
    async (query) => {
      const { start, issued } = startFor({ PUBLIC_URL: 'http://localhost:3000' });
      const refusal = await start(query).catch((e: unknown) => e);
      expect(refusal).toBeInstanceOf(ConnectFailure);
      expect((refusal as ConnectFailure).code).toBe('invalid_request');
      expect(issued).toEqual([]);
    },
  );

  it('refuses a start without a ticket before storing anything', async () => {
    const { start, issued } = startFor({ PUBLIC_URL: 'http://localhost:3000' });
    const refusal = await start({}).catch((e: unknown) => e);
    expect((refusal as ConnectFailure).code).toBe('ticket_invalid');
    expect(issued).toEqual([]);
  });
});
