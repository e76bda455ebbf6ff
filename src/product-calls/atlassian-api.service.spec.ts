import { Readable } from 'node:stream';
import { describe, expect, it } from '@jest/globals';
import type { Clock } from '../common/clock.js';
import { DomainError, ReauthRequiredError } from '../common/errors.js';
import type { AccessTokenService } from '../refresh/access-token.service.js';
import { AtlassianApi } from './atlassian-api.service.js';
import type { AtlassianClient } from '../atlassian/atlassian.client.js';
import type { LifecycleService } from '../lifecycle/lifecycle.service.js';
import { AtlassianError } from '../atlassian/atlassian.errors.js';

const NOW = new Date('2026-03-02T09:00:00.000Z');
const clock: Clock = { now: () => NOW };
const at = (minutes: number) => new Date(NOW.getTime() + minutes * 60_000).toISOString();

/**
 * An AccessTokenService that answers the stored token while it satisfies the asked validity, else the next token of
 * `refreshed` (a refresh); `refreshed` empty means the refresh failed and the stored token is what comes back.
 */
function tokens(stored: { accessToken: string; expiresAt: string }, refreshed: { accessToken: string; expiresAt: string }[] = []) {
  const asked: number[] = [];
  let current = stored;
  const service = {
    accessToken: (_userId: string, minValiditySeconds: number) => {
      asked.push(minValiditySeconds);
      if (new Date(current.expiresAt).getTime() - NOW.getTime() < minValiditySeconds * 1000) current = refreshed.shift() ?? current;
      return Promise.resolve(current);
    },
  };
  return { service: service as unknown as AccessTokenService, asked };
}

/** An AtlassianClient whose product call answers each token as `answers` says. */
function client(answers: Record<string, unknown>) {
  const used: string[] = [];
  const call = (token: string) => {
    used.push(token);
    const answer = answers[token];
    return answer instanceof Error ? Promise.reject(answer) : Promise.resolve(answer);
  };
  const fake = { productGet: (token: string) => call(token), accessibleResources: (token: string) => call(token) };
  return { client: fake as unknown as AtlassianClient, used };
}

async function failure(promise: Promise<unknown>): Promise<DomainError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(error instanceof DomainError)) throw new Error(`expected a DomainError, got ${String(error)}`);
  return error;
}

/** The lifecycle's answer for a user whose grant lacks none of the configured scopes. */
const noMissingScopes = scopesLacking(() => []);

function scopesLacking(missing: (userId: string) => string[] | undefined): LifecycleService {
  return { missingScopes: (userId: string) => Promise.resolve(missing(userId)) } as unknown as LifecycleService;
}
const rejected = () => new AtlassianError('token_rejected', 'Atlassian refused the access token', { status: 401 });

describe('AtlassianApi', () => {
  it('calls with a token valid for at least 30 s and passes the answer through', async () => {
    const { service, asked } = tokens({ accessToken: 'a1', expiresAt: at(50) });
    const { client: fake } = client({ a1: { accountId: 'x' } });
    const api = new AtlassianApi(service, fake, clock, noMissingScopes);
    await expect(api.productGet('u', 'jira', 'cloud-1', '/rest/api/3/myself')).resolves.toEqual({ accountId: 'x' });
    expect(asked).toEqual([30]);
  });

  it('after a 401, asks for a token that outlives the refused one (a refresh) and retries once', async () => {
    const { service, asked } = tokens({ accessToken: 'a1', expiresAt: at(50) }, [{ accessToken: 'a2', expiresAt: at(60) }]);
    const { client: fake, used } = client({ a1: rejected(), a2: { ok: true } });
    const api = new AtlassianApi(service, fake, clock, noMissingScopes);
    await expect(api.productGet('u', 'jira', 'cloud-1', '/rest/api/3/myself')).resolves.toEqual({ ok: true });
    expect(asked).toEqual([30, 50 * 60 + 1]);
    expect(used).toEqual(['a1', 'a2']);
  });

  it('retries only once: a second 401 is atlassian_forbidden', async () => {
    const { service } = tokens({ accessToken: 'a1', expiresAt: at(50) }, [{ accessToken: 'a2', expiresAt: at(60) }]);
    const { client: fake, used } = client({ a1: rejected(), a2: rejected() });
    const error = await failure(new AtlassianApi(service, fake, clock, noMissingScopes).productGet('u', 'jira', 'cloud-1', '/x'));
    expect(error.code).toBe('atlassian_forbidden');
    expect(used).toEqual(['a1', 'a2']);
  });

  it("names the scopes the user's grant lacks when Atlassian says the scopes do not match", async () => {
    const mismatch = () =>
      new AtlassianError('token_rejected', 'Atlassian refused the access token: Unauthorized; scope does not match', { status: 401 });
    const { client: fake } = client({ a1: mismatch(), a2: mismatch() });
    const refusal = (scopes: LifecycleService) => {
      const { service } = tokens({ accessToken: 'a1', expiresAt: at(50) }, [{ accessToken: 'a2', expiresAt: at(60) }]);
      return failure(new AtlassianApi(service, fake, clock, scopes).productGet('u', 'jira', 'cloud-1', '/x'));
    };
    const lacking = await refusal(scopesLacking((userId) => (userId === 'u' ? ['read:jira-work'] : undefined)));
    expect(lacking.code).toBe('atlassian_forbidden');
    expect(lacking.message).toContain('lacks scopes that ATLASSIAN_SCOPES asks for: read:jira-work');
    const none = await refusal(noMissingScopes);
    expect([none.code, none.message]).toEqual([
      'atlassian_forbidden',
      expect.stringContaining('needs a scope that ATLASSIAN_SCOPES does not ask for'),
    ]);
  });

  it('answers 503 without a second call when no fresh token could be had', async () => {
    const { service } = tokens({ accessToken: 'a1', expiresAt: at(50) });
    const { client: fake, used } = client({ a1: rejected() });
    const error = await failure(new AtlassianApi(service, fake, clock, noMissingScopes).productGet('u', 'jira', 'cloud-1', '/x'));
    expect([error.code, error.headers['Retry-After']]).toEqual(['atlassian_unavailable', '5']);
    expect(used).toEqual(['a1']);
  });

  it('passes the refresh rules’ answer on: a revoked grant is reauth_required', async () => {
    const service = {
      accessToken: (userId: string, minValiditySeconds: number) =>
        minValiditySeconds > 30
          ? Promise.reject(new ReauthRequiredError(userId))
          : Promise.resolve({ accessToken: 'a1', expiresAt: at(50) }),
    } as unknown as AccessTokenService;
    const { client: fake } = client({ a1: rejected() });
    expect((await failure(new AtlassianApi(service, fake, clock, noMissingScopes).productGet('u', 'jira', 'cloud-1', '/x'))).code).toBe(
      'reauth_required',
    );
  });

  it.each([
    [
      'a 429 with Retry-After',
      new AtlassianError('rate_limited', 'limited', { status: 429, retryAfterMs: 12_500 }),
      'atlassian_unavailable',
      '13',
    ],
    ['a 429 without Retry-After', new AtlassianError('rate_limited', 'limited', { status: 429 }), 'atlassian_unavailable', '5'],
    ['a 503', new AtlassianError('unavailable', 'down', { status: 503 }), 'atlassian_unavailable', '5'],
    ['a timeout', new AtlassianError('timeout', 'slow'), 'atlassian_unavailable', '5'],
    ['a 403', new AtlassianError('forbidden', 'no', { status: 403 }), 'atlassian_forbidden', undefined],
    ['a 404 on a site', new AtlassianError('not_found', 'none', { status: 404 }), 'site_not_found', undefined],
    ['an unreadable answer', new AtlassianError('bad_response', 'odd', { status: 418 }), 'atlassian_error', undefined],
  ])('answers %s without retrying', async (_, answer, code, retryAfter) => {
    const { service, asked } = tokens({ accessToken: 'a1', expiresAt: at(50) });
    const { client: fake, used } = client({ a1: answer });
    const error = await failure(new AtlassianApi(service, fake, clock, noMissingScopes).productGet('u', 'jira', 'cloud-1', '/x'));
    expect([error.code, error.headers['Retry-After']]).toEqual([code, retryAfter]);
    expect(used).toEqual(['a1']);
    expect(asked).toEqual([30]);
  });

  it('calls a 404 from accessible-resources what it is: an unexpected answer', async () => {
    const { service } = tokens({ accessToken: 'a1', expiresAt: at(50) });
    const { client: fake } = client({ a1: new AtlassianError('not_found', 'none', { status: 404 }) });
    expect((await failure(new AtlassianApi(service, fake, clock, noMissingScopes).accessibleResources('u'))).code).toBe('atlassian_error');
  });
});

const paused = new AtlassianError('rate_limited', 'held back', {
  status: 429,
  retryAfterMs: 41_200,
  reason: 'jira-quota-global-based',
  paused: true,
});

describe('AtlassianApi and the rate-limit governor', () => {
  it('answers a call held back by the governor with 429 atlassian_rate_limited, the seconds left and the reason', async () => {
    const { service } = tokens({ accessToken: 'a1', expiresAt: at(50) });
    const { client: fake } = client({ a1: paused });
    const error = await failure(
      new AtlassianApi(service, fake, clock, noMissingScopes).productGet('u', 'jira', 'cloud-1', '/rest/api/3/myself'),
    );
    expect([error.code, error.status, error.headers]).toEqual([
      'atlassian_rate_limited',
      429,
      { 'Retry-After': '42', 'RateLimit-Reason': 'jira-quota-global-based' },
    ]);
  });
});

describe('AtlassianApi.productStream', () => {
  const request = { method: 'GET', path: '/rest/api/3/myself', query: '', headers: {} };

  /** An AtlassianClient whose streamed call answers each token as `answers` says; bodies record whether they were read. */
  function streamingClient(answers: Record<string, number | Error>) {
    const used: string[] = [];
    const drained: string[] = [];
    const fake = {
      productStream: (token: string) => {
        used.push(token);
        const answer = answers[token];
        if (answer instanceof Error) return Promise.reject(answer);
        const body = Readable.from([`body for ${token}`]);
        body.once('end', () => drained.push(token));
        return Promise.resolve({ status: answer, headers: new Headers(), body });
      },
    };
    return { client: fake as unknown as AtlassianClient, used, drained };
  }

  it("passes Atlassian's answer on as it came, a 429 or a 404 included", async () => {
    for (const status of [200, 404, 429, 503]) {
      const { service } = tokens({ accessToken: 'a1', expiresAt: at(50) });
      const { client: fake, used } = streamingClient({ a1: status });
      const answer = await new AtlassianApi(service, fake, clock, noMissingScopes).productStream('u', 'jira', 'c1', request);
      expect(answer.status).toBe(status);
      expect(used).toEqual(['a1']);
    }
  });

  it('after a 401, reads its body away and retries once with a refreshed token', async () => {
    const { service, asked } = tokens({ accessToken: 'a1', expiresAt: at(50) }, [{ accessToken: 'a2', expiresAt: at(60) }]);
    const { client: fake, used, drained } = streamingClient({ a1: 401, a2: 401 });
    const answer = await new AtlassianApi(service, fake, clock, noMissingScopes).productStream('u', 'jira', 'c1', request);
    expect(answer.status).toBe(401);
    expect(used).toEqual(['a1', 'a2']);
    expect(asked).toEqual([30, 50 * 60 + 1]);
    await new Promise((resolve) => setImmediate(resolve));
    expect(drained).toEqual(['a1']);
  });

  it('reads the token while the request is still being made, and sends nothing before it is', async () => {
    const { service, asked } = tokens({ accessToken: 'a1', expiresAt: at(50) });
    const { client: fake, used } = streamingClient({ a1: 200 });
    let make!: (made: typeof request) => void;
    const answering = new AtlassianApi(service, fake, clock, noMissingScopes).productStream(
      'u',
      'jira',
      'c1',
      new Promise((resolve) => (make = resolve)),
    );
    await new Promise((resolve) => setImmediate(resolve));
    expect([asked, used]).toEqual([[30], []]);
    make(request);
    expect((await answering).status).toBe(200);
    expect(used).toEqual(['a1']);
  });

  it("answers the request's failure when it fails, whatever the token read does, and calls nothing", async () => {
    const noToken = { accessToken: () => Promise.reject(new ReauthRequiredError('u')) } as unknown as AccessTokenService;
    const { client: fake, used } = streamingClient({});
    const siteMissing = new DomainError('site_not_found', 'Site c9 is not among the sites of user "u".');
    const error = await failure(
      new AtlassianApi(noToken, fake, clock, noMissingScopes).productStream('u', 'jira', 'c9', Promise.reject(siteMissing)),
    );
    expect(error).toBe(siteMissing);
    expect(used).toEqual([]);
  });

  it.each([
    ['a paused scope', paused, 'atlassian_rate_limited', { 'Retry-After': '42', 'RateLimit-Reason': 'jira-quota-global-based' }],
    ['a timeout', new AtlassianError('timeout', 'Atlassian did not answer within 15000 ms'), 'atlassian_timeout', {}],
    [
      'no connection',
      new AtlassianError('network', 'Atlassian could not be reached (ECONNREFUSED)'),
      'atlassian_unavailable',
      { 'Retry-After': '5' },
    ],
  ])('answers %s with %s', async (_, thrown, code, headers) => {
    const { service } = tokens({ accessToken: 'a1', expiresAt: at(50) });
    const { client: fake } = streamingClient({ a1: thrown });
    const error = await failure(new AtlassianApi(service, fake, clock, noMissingScopes).productStream('u', 'jira', 'c1', request));
    expect([error.code, error.headers]).toEqual([code, headers]);
  });
});
