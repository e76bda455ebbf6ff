import { randomBytes } from 'node:crypto';
import { beforeAll, describe, expect, it } from '@jest/globals';
import { type ExecutionContext, Logger } from '@nestjs/common';
import type { Request, Response } from 'express';
import type { AtlassianClient } from '../atlassian/atlassian.client.js';
import { AtlassianError, type AtlassianErrorKind } from '../atlassian/atlassian.errors.js';
import type { AccessibleResource, TokenSet } from '../atlassian/atlassian.types.js';
import type { Clock } from '../common/clock.js';
import { loadConfig } from '../config/app-config.js';
import type { ConnectionsService, NewConnection } from '../connections/connections.service.js';
import { AtlassianCallbackGuard } from './atlassian-auth.guards.js';
import { AtlassianStrategy } from './atlassian.strategy.js';
import { BROWSER_COOKIE } from './browser-cookie.js';
import type { CallbackParams } from './browser-params.js';
import { CallbackService, type ConnectedUser } from './callback.service.js';
import { ConnectFailure, type ConnectFailureCode } from './connect-failure.js';
import type { ConnectTicketsService } from './connect-tickets.service.js';
import { OAuthStateStore } from './oauth-state.store.js';
import type { ConsumedState } from './oauth-states.repository.js';
import type { OAuthStatesService, StateOutcome } from './oauth-states.service.js';
import type { SecretGenerator } from './secrets.js';

const CALLBACK = 'https://tokens.example.com/auth/atlassian/callback';
const STARTED = new Date('2026-03-02T09:00:00Z');
const STATE: ConsumedState = { id: 'state-id', userId: 'user-1', redirectUri: CALLBACK, createdAt: STARTED };
const TOKENS: TokenSet = { accessToken: 'at-1', refreshToken: 'rt-1', expiresInSeconds: 3600, scopes: ['read:me', 'offline_access'] };
const SITES: AccessibleResource[] = [
  { id: 'cloud-1', url: 'https://acme.atlassian.net', name: 'acme', scopes: ['read:jira-work'], avatarUrl: null },
];

/**
 * The callback as AtlassianCallbackGuard runs it through passport: the strategy, the state store and this service, over
 * fakes that record, in order, every step the callback takes, so tests can see what ran and what never did.
 */
function setup(
  overrides: { exchange?: () => Promise<TokenSet>; me?: () => Promise<unknown>; consume?: () => Promise<ConsumedState> } = {},
) {
  const steps: string[] = [];
  const outcomes: StateOutcome[] = [];
  const stored: NewConnection[] = [];
  const states = {
    consume: async () => {
      steps.push('consume');
      return overrides.consume ? overrides.consume() : STATE;
    },
    recordOutcome: async (_state: ConsumedState, outcome: StateOutcome) => {
      outcomes.push(outcome);
    },
  };
  const atlassian = {
    redirectUri: CALLBACK,
    exchangeCode: async () => {
      steps.push('exchange');
      return overrides.exchange ? overrides.exchange() : TOKENS;
    },
    me: async () => {
      steps.push('me');
      return overrides.me ? overrides.me() : { accountId: 'acc-1', name: 'Alice' };
    },
    accessibleResources: async () => {
      steps.push('sites');
      return SITES;
    },
  };
  const connections = {
    storeConnected: async (connection: NewConnection) => {
      steps.push('store');
      stored.push(connection);
      return { id: 'conn-1', version: 1, replaced: false };
    },
  };
  const clock: Clock = { now: () => new Date(STARTED.getTime() + 30_000) };
  const service = new CallbackService(
    states as unknown as OAuthStatesService,
    atlassian as unknown as AtlassianClient,
    connections as unknown as ConnectionsService,
    clock,
  );
  const config = loadConfig({ TOKEN_ENCRYPTION_KEYS: `k:${randomBytes(32).toString('base64')}`, ATLASSIAN_CALLBACK_URL: CALLBACK });
  const store = new OAuthStateStore({} as ConnectTicketsService, states as unknown as OAuthStatesService, {} as SecretGenerator, config);
  const strategy = new AtlassianStrategy(config, store, service, atlassian as unknown as AtlassianClient);
  const guard = new AtlassianCallbackGuard(strategy, store, service);
  const complete = async (params: CallbackParams, browserSecret: string): Promise<ConnectedUser> => {
    const query = Object.fromEntries(
      Object.entries({ code: params.code, state: params.state, error: params.error, error_description: params.errorDescription }).filter(
        ([, value]) => value !== undefined,
      ),
    );
    const req = { query, cookies: { [BROWSER_COOKIE]: browserSecret } } as unknown as Request & { user?: ConnectedUser };
    const context = { switchToHttp: () => ({ getRequest: () => req, getResponse: () => ({}) as Response }) };
    await guard.canActivate(context as unknown as ExecutionContext);
    return req.user!;
  };
  return { complete, steps, outcomes, stored, connections };
}

async function failureOf(work: Promise<unknown>): Promise<ConnectFailure> {
  const error = await work.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(error instanceof ConnectFailure)) throw new Error(`expected a ConnectFailure, got ${String(error)}`);
  return error;
}

const callback: CallbackParams = { code: 'code-1', state: 'state-1' };

describe('the callback through passport and CallbackService', () => {
  beforeAll(() => Logger.overrideLogger(false));

  it('spends the state, then exchanges, reads the account and sites, and stores the connection', async () => {
    const { complete, steps, outcomes, stored } = setup();
    await expect(complete(callback, 'browser')).resolves.toEqual({
      userId: 'user-1',
      atlassianAccountId: 'acc-1',
      accountName: 'Alice',
      sites: SITES,
      replaced: false,
    });
    expect(steps).toEqual(['consume', 'exchange', 'me', 'sites', 'store']);
    expect(stored).toEqual([
      {
        userId: 'user-1',
        atlassianAccountId: 'acc-1',
        accessToken: 'at-1',
        refreshToken: 'rt-1',
        expiresInSeconds: 3600,
        scopes: ['read:me', 'offline_access'],
        resources: SITES,
      },
    ]);
    expect(outcomes).toEqual(['connected']);
  });

  it('refuses a callback without state before touching anything', async () => {
    const { complete, steps } = setup();
    expect((await failureOf(complete({ code: 'c' }, 'browser'))).code).toBe('state_missing');
    expect((await failureOf(complete({ code: 'c', state: '' }, 'browser'))).code).toBe('state_missing');
    expect(steps).toEqual([]);
  });

  it('exchanges nothing when the state is refused', async () => {
    const { complete, steps } = setup({
      consume: () => Promise.reject(new ConnectFailure('state_used', 'used')),
    });
    expect((await failureOf(complete(callback, 'browser'))).code).toBe('state_used');
    expect(steps).toEqual(['consume']);
  });

  it.each([
    [{ error: 'access_denied', errorDescription: 'User did not authorize the request', state: 's' }, 'access_denied', 'You chose not to'],
    [{ error: 'server_error', state: 's' }, 'authorization_failed', 'Atlassian answered server_error'],
    [{ state: 's' }, 'code_missing', 'without a code'],
    [{ state: 's', code: '' }, 'code_missing', 'without a code'],
  ])('ends %j as %s, after spending the state and without an exchange', async (params, code, detail) => {
    const { complete, steps, outcomes } = setup();
    const failure = await failureOf(complete(params, 'browser'));
    expect(failure.code).toBe(code);
    expect(failure.detail).toContain(detail);
    expect(steps).toEqual(['consume']);
    expect(outcomes).toEqual([code]);
  });

  it('explains a rejected code, naming what it ruled out', async () => {
    const { complete, steps, outcomes } = setup({
      exchange: () =>
        Promise.reject(
          new AtlassianError('invalid_grant', 'Atlassian answered invalid_grant', {
            status: 403,
            error: 'invalid_grant',
            description: 'Invalid authorization code',
          }),
        ),
    });
    const failure = await failureOf(complete(callback, 'browser'));
    expect(failure.code).toBe('invalid_grant');
    expect(failure.detail).toBe('Atlassian refused the sign-in code (invalid_grant: Invalid authorization code).');
    expect(Object.fromEntries(failure.diagnosis!.causes.map((c) => [c.cause, c.verdict]))).toEqual({
      redirect_uri_mismatch: 'possible',
      code_reused: 'unlikely',
      code_altered: 'unlikely',
      code_expired: 'ruled_out',
    });
    expect(steps).toEqual(['consume', 'exchange']);
    expect(outcomes).toEqual(['invalid_grant']);
  });

  it('reads an old code’s invalid_request as expiry', async () => {
    const { complete } = setup({
      exchange: () =>
        Promise.reject(
          new AtlassianError('invalid_request', 'x', {
            status: 400,
            error: 'invalid_request',
            description: 'authorization_code is invalid',
          }),
        ),
    });
    const failure = await failureOf(complete(callback, 'browser'));
    expect(failure.code).toBe('invalid_grant');
    expect(failure.diagnosis!.causes[0]).toMatchObject({ cause: 'code_expired', verdict: 'likely' });
  });

  it.each<[AtlassianErrorKind, ConnectFailureCode]>([
    ['unavailable', 'atlassian_unavailable'],
    ['rate_limited', 'atlassian_unavailable'],
    ['timeout', 'atlassian_unavailable'],
    ['network', 'atlassian_unavailable'],
    ['bad_response', 'atlassian_error'],
    ['client_unauthorized', 'configuration_error'],
    ['unauthorized_client', 'configuration_error'],
  ])('ends an exchange failing with %s as %s, exchanging once', async (kind, code) => {
    const { complete, steps, stored } = setup({ exchange: () => Promise.reject(new AtlassianError(kind, `Atlassian: ${kind}`)) });
    const failure = await failureOf(complete(callback, 'browser'));
    expect(failure.code).toBe(code);
    expect(failure.detail).toBe(`Exchanging the sign-in code: Atlassian: ${kind}.`);
    expect(steps.filter((s) => s === 'exchange')).toHaveLength(1);
    expect(stored).toEqual([]);
  });

  it('refuses a token answer without a refresh token, storing nothing', async () => {
    const { complete, steps } = setup({ exchange: async () => ({ ...TOKENS, refreshToken: undefined }) });
    const failure = await failureOf(complete(callback, 'browser'));
    expect(failure.code).toBe('offline_access_missing');
    expect(failure.detail).toContain('offline_access');
    expect(steps).toEqual(['consume', 'exchange']);
  });

  it('says the account could not be read when /me refuses the token', async () => {
    const { complete, stored } = setup({
      me: () => Promise.reject(new AtlassianError('token_rejected', 'Atlassian refused the access token')),
    });
    const failure = await failureOf(complete(callback, 'browser'));
    expect(failure.code).toBe('profile_unavailable');
    expect(stored).toEqual([]);
  });

  it('records internal_error and passes on an unexpected error', async () => {
    const { complete, outcomes, connections } = setup();
    connections.storeConnected = () => Promise.reject(new Error('database gone'));
    await expect(complete(callback, 'browser')).rejects.toThrow('database gone');
    expect(outcomes).toEqual(['internal_error']);
  });
});
