import type { Clock } from '../../../src/common/clock.js';
import { SandboxIdentityProvider, type Sleep, type TokenAnswer } from '../../../src/sandbox/sandbox.idp.js';
import type { SandboxResponse } from '../../../src/sandbox/sandbox.responses.js';
import { accountIdFor, type SandboxSite } from '../../../src/sandbox/sandbox.users.js';

const REDIRECT_URI = 'https://app.example/auth/atlassian/callback';
const CLIENT = { client_id: 'client-1', client_secret: 'secret-1' };
const FULL_SCOPE = 'read:jira-work offline_access read:me';
const DAY_SECONDS = 24 * 3600;

class FakeClock implements Clock {
  private current = new Date('2026-03-01T10:00:00Z');

  now(): Date {
    return this.current;
  }

  advanceSeconds(seconds: number): void {
    this.current = new Date(this.current.getTime() + seconds * 1000);
  }
}

/** A sleep that never ends by itself: the test releases it, so slow calls stay open without waiting. */
function manualSleep(): { sleep: Sleep; pending: number[]; releaseAll: () => void } {
  const waiting: Array<{ ms: number; release: () => void }> = [];
  return {
    sleep: (ms) => new Promise<void>((release) => waiting.push({ ms, release })),
    get pending() {
      return waiting.map((entry) => entry.ms);
    },
    releaseAll: () => waiting.splice(0).forEach((entry) => entry.release()),
  };
}

/** Lets awaited microtasks and immediates run, so a call reaches its next real wait. */
const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

function setup(sleep?: Sleep) {
  const clock = new FakeClock();
  const idp = new SandboxIdentityProvider(
    { clientId: CLIENT.client_id, clientSecret: CLIENT.client_secret, redirectUris: [REDIRECT_URI] },
    clock,
    sleep,
  );
  return { clock, idp };
}

function issueCode(idp: SandboxIdentityProvider, user = 'alice', scope = FULL_SCOPE): string {
  const answer = idp.authorizeDirect({ user, redirectUri: REDIRECT_URI, scope, state: 's' });
  expect(answer.status).toBe(200);
  return (answer.body as { code: string }).code;
}

function exchange(idp: SandboxIdentityProvider, code: string, overrides: Record<string, unknown> = {}): Promise<SandboxResponse> {
  return idp.token({ grant_type: 'authorization_code', ...CLIENT, code, redirect_uri: REDIRECT_URI, ...overrides });
}

function refresh(
  idp: SandboxIdentityProvider,
  refreshToken: string | undefined,
  overrides: Record<string, unknown> = {},
): Promise<SandboxResponse> {
  return idp.token({ grant_type: 'refresh_token', ...CLIENT, refresh_token: refreshToken, ...overrides });
}

function tokensOf(response: SandboxResponse): TokenAnswer {
  expect(response.status).toBe(200);
  return response.body as TokenAnswer;
}

async function connect(idp: SandboxIdentityProvider, user = 'alice', scope = FULL_SCOPE): Promise<TokenAnswer> {
  return tokensOf(await exchange(idp, issueCode(idp, user, scope)));
}

const bearer = (token: string) => `Bearer ${token}`;
const INVALID_CODE = { status: 403, body: { error: 'invalid_grant', error_description: 'Invalid authorization code' } };
const INVALID_REFRESH = { status: 403, body: { error: 'invalid_grant', error_description: 'Unknown or invalid refresh token.' } };
const UNAUTHORIZED_API = { status: 401, body: { code: 401, message: 'Unauthorized' } };

describe('SandboxIdentityProvider', () => {
  describe('authorize request', () => {
    const valid = {
      audience: 'api.atlassian.com',
      client_id: CLIENT.client_id,
      scope: 'read:me read:me offline_access',
      redirect_uri: REDIRECT_URI,
      state: 'xyz',
      response_type: 'code',
      prompt: 'consent',
    };

    it('accepts a well-formed request and de-duplicates scopes', () => {
      const check = setup().idp.checkAuthorize(valid);
      expect(check).toMatchObject({ ok: true, request: { scopes: ['read:me', 'offline_access'], state: 'xyz' } });
    });

    it.each([
      ['an unknown client_id', { client_id: 'someone-else' }, 'unauthorized_client'],
      ['a redirect_uri with a trailing slash', { redirect_uri: `${REDIRECT_URI}/` }, 'unauthorized_client'],
      ['no audience', { audience: undefined }, 'invalid_request'],
      ['no response_type', { response_type: undefined }, 'unsupported_response_type'],
      ['no scope', { scope: ' ' }, 'invalid_scope'],
      ['a repeated parameter', { state: ['a', 'b'] }, 'invalid_request'],
    ])('refuses %s without a redirect', (_case, change, error) => {
      const check = setup().idp.checkAuthorize({ ...valid, ...change });
      expect(check).toMatchObject({ ok: false, error: { error } });
    });

    it('names the redirect_uri problem as Atlassian does', () => {
      const check = setup().idp.checkAuthorize({ ...valid, redirect_uri: 'https://evil.example/cb' });
      expect(check).toEqual({
        ok: false,
        error: { error: 'unauthorized_client', description: 'redirect_uri is not registered for client' },
      });
    });

    it('sends a denial back to the app with state', () => {
      const decision = setup().idp.decide({ ...valid, decision: 'deny' });
      expect(decision).toEqual({
        kind: 'redirect',
        location: `${REDIRECT_URI}?error=access_denied&error_description=User%20did%20not%20authorize%20the%20request&state=xyz`,
      });
    });

    it('sends a code back on acceptance', () => {
      const decision = setup().idp.decide({ ...valid, decision: 'accept', user: 'bob' });
      expect(decision.kind).toBe('redirect');
      expect((decision as { location: string }).location).toMatch(
        /^https:\/\/app\.example\/auth\/atlassian\/callback\?code=[\w-]+&state=xyz$/,
      );
    });

    it('asks again for a user name it cannot accept, and refuses unknown decisions', () => {
      const { idp } = setup();
      expect(idp.decide({ ...valid, decision: 'accept', other_user: 'Not Valid!' })).toMatchObject({ kind: 'retry' });
      expect(idp.decide({ ...valid, decision: 'accept' })).toMatchObject({ kind: 'retry', message: 'Choose a user to continue as.' });
      expect(idp.decide({ ...valid, decision: 'maybe', user: 'bob' })).toMatchObject({ kind: 'invalid' });
    });

    it('lets a typed user name win over the picked one and gives it the requested sites', () => {
      const { idp } = setup();
      idp.decide({ ...valid, decision: 'accept', user: 'alice', other_user: 'dave', sites: '3' });
      expect(idp.findUser('dave')?.sites).toHaveLength(3);
    });
  });

  describe('users', () => {
    it('has alice with one site listed twice, bob with one site and carol with none', () => {
      const { idp } = setup();
      const alice = idp.findUser('alice')!;
      expect(alice.sites).toHaveLength(4);
      expect(new Set(alice.sites.map((site) => site.id)).size).toBe(3);
      expect(idp.findUser('bob')?.sites).toHaveLength(1);
      expect(idp.findUser('carol')?.sites).toHaveLength(0);
    });

    it('creates ad-hoc users with stable account ids and keeps fixture sites fixed', () => {
      const { idp } = setup();
      expect(idp.resolveUser('load-17', 5)).toMatchObject({ ok: true, value: { accountId: accountIdFor('load-17') } });
      expect(idp.resolveUser('load-17')).toMatchObject({ ok: true, value: { sites: { length: 5 } } });
      expect(idp.resolveUser('load-17', 2)).toMatchObject({ ok: true, value: { sites: { length: 2 } } });
      expect(idp.resolveUser('alice', 0)).toMatchObject({ ok: true, value: { sites: { length: 4 } } });
      expect(idp.resolveUser('UPPER')).toMatchObject({ ok: false });
    });
  });

  describe('authorization code exchange', () => {
    it('issues a token pair once per code', async () => {
      const { idp } = setup();
      const code = issueCode(idp);
      const tokens = tokensOf(await exchange(idp, code));
      expect(tokens).toMatchObject({ expires_in: 3600, token_type: 'Bearer', scope: FULL_SCOPE, refresh_token: expect.any(String) });
      expect(await exchange(idp, code)).toEqual(INVALID_CODE);
      expect(idp.stats()).toMatchObject({ codesExchanged: 1, codeReuse: 1, tokenCalls: { authorization_code: 2 } });
    });

    it('refuses an unknown or altered code', async () => {
      const { idp } = setup();
      const code = issueCode(idp);
      expect(await exchange(idp, `${code}x`)).toEqual(INVALID_CODE);
      expect(await exchange(idp, 'nonsense')).toEqual(INVALID_CODE);
    });

    it('refuses a code older than its lifetime', async () => {
      const { idp, clock } = setup();
      const fresh = issueCode(idp);
      const stale = issueCode(idp, 'bob');
      clock.advanceSeconds(599);
      expect((await exchange(idp, fresh)).status).toBe(200);
      clock.advanceSeconds(1);
      expect(await exchange(idp, stale)).toEqual({
        status: 400,
        body: { error: 'invalid_request', error_description: 'authorization_code is invalid' },
      });
    });

    it('requires the byte-identical redirect_uri, and the failed attempt spends the code', async () => {
      const { idp } = setup();
      const code = issueCode(idp);
      expect(await exchange(idp, code, { redirect_uri: `${REDIRECT_URI}/` })).toEqual(INVALID_CODE);
      expect(await exchange(idp, code)).toEqual(INVALID_CODE);
      expect(idp.stats().codeReuse).toBe(1);
    });

    it('answers 401 access_denied for a wrong or missing client secret without spending the code', async () => {
      const { idp } = setup();
      const code = issueCode(idp);
      const unauthorized = { status: 401, body: { error: 'access_denied', error_description: 'Unauthorized' } };
      expect(await exchange(idp, code, { client_secret: 'wrong' })).toEqual(unauthorized);
      expect(await exchange(idp, code, { client_secret: undefined })).toEqual(unauthorized);
      expect((await exchange(idp, code)).status).toBe(200);
    });

    it('refuses unsupported grant types and repeated fields', async () => {
      const { idp } = setup();
      expect((await idp.token({ grant_type: 'password', ...CLIENT })).body).toMatchObject({ error: 'unsupported_grant_type' });
      expect((await exchange(idp, issueCode(idp), { code: ['a', 'b'] })).body).toMatchObject({ error: 'invalid_request' });
      expect(idp.stats().tokenCalls.other).toBe(1);
    });

    it('returns a refresh token only with offline_access, or never in omit mode', async () => {
      const { idp } = setup();
      expect((await connect(idp, 'alice', 'read:me')).refresh_token).toBeUndefined();
      idp.updateSettings({ omitRefreshToken: true });
      expect((await connect(idp, 'bob')).refresh_token).toBeUndefined();
    });
  });

  describe('refresh', () => {
    it('rotates: every refresh returns a new pair', async () => {
      const { idp } = setup();
      const first = await connect(idp);
      const second = tokensOf(await refresh(idp, first.refresh_token));
      expect(second.refresh_token).not.toBe(first.refresh_token);
      expect(second.access_token).not.toBe(first.access_token);
      expect(second).toMatchObject({ expires_in: 3600, token_type: 'Bearer', scope: FULL_SCOPE });
      expect(idp.stats()).toMatchObject({ refreshes: 1, reuseWithinLeeway: 0, tokenCalls: { refresh_token: 1 } });
    });

    it('still accepts the previous refresh token within the leeway', async () => {
      const { idp, clock } = setup();
      const first = await connect(idp);
      const second = tokensOf(await refresh(idp, first.refresh_token));
      clock.advanceSeconds(599);
      const recovered = tokensOf(await refresh(idp, first.refresh_token));
      expect(recovered.refresh_token).not.toBe(second.refresh_token);
      expect((await refresh(idp, recovered.refresh_token)).status).toBe(200);
      expect(idp.stats()).toMatchObject({ reuseWithinLeeway: 1, reuseAfterLeeway: 0 });
    });

    it('revokes the whole grant when a rotated token comes back after the leeway', async () => {
      const { idp, clock } = setup();
      const first = await connect(idp);
      const second = tokensOf(await refresh(idp, first.refresh_token));
      clock.advanceSeconds(600);
      expect(await refresh(idp, first.refresh_token)).toEqual(INVALID_REFRESH);
      expect(await refresh(idp, second.refresh_token)).toEqual(INVALID_REFRESH);
      expect(await refresh(idp, first.refresh_token)).toEqual(INVALID_REFRESH);
      expect(await idp.me(bearer(second.access_token))).toEqual(UNAUTHORIZED_API);
      expect(idp.stats()).toMatchObject({ reuseAfterLeeway: 1, grantsRevoked: 1 });
    });

    it('refuses an unknown refresh token and a wrong client secret', async () => {
      const { idp } = setup();
      const first = await connect(idp);
      expect(await refresh(idp, 'unknown')).toEqual(INVALID_REFRESH);
      expect(await refresh(idp, undefined)).toEqual(INVALID_REFRESH);
      expect((await refresh(idp, first.refresh_token, { client_secret: 'wrong' })).status).toBe(401);
      expect((await refresh(idp, first.refresh_token)).status).toBe(200);
    });

    it('expires refresh tokens after 90 days without use, counted from the last refresh', async () => {
      const { idp, clock } = setup();
      const first = await connect(idp);
      clock.advanceSeconds(89 * DAY_SECONDS);
      const second = tokensOf(await refresh(idp, first.refresh_token));
      clock.advanceSeconds(89 * DAY_SECONDS);
      const third = tokensOf(await refresh(idp, second.refresh_token));
      clock.advanceSeconds(90 * DAY_SECONDS);
      expect(await refresh(idp, third.refresh_token)).toEqual(INVALID_REFRESH);
    });

    it('keeps the presented token usable when answers omit refresh tokens', async () => {
      const { idp } = setup();
      const first = await connect(idp);
      idp.updateSettings({ omitRefreshToken: true });
      expect(tokensOf(await refresh(idp, first.refresh_token)).refresh_token).toBeUndefined();
      expect((await refresh(idp, first.refresh_token)).status).toBe(200);
      expect(idp.stats().reuseWithinLeeway).toBe(0);
    });

    it('counts refreshes of one grant that overlap in time', async () => {
      const manual = manualSleep();
      const { idp } = setup(manual.sleep);
      const alice = await connect(idp, 'alice');
      const bob = await connect(idp, 'bob');
      idp.setLatency({ tokenMs: 250 });
      const calls = [refresh(idp, alice.refresh_token), refresh(idp, alice.refresh_token), refresh(idp, bob.refresh_token)];
      expect(manual.pending).toEqual([250, 250, 250]);
      expect(idp.stats()).toMatchObject({ overlappingRefreshes: 1, refreshesInFlight: 3, maxRefreshesInFlight: 3 });
      manual.releaseAll();
      const answers = await Promise.all(calls);
      expect(answers.map((answer) => answer.status)).toEqual([200, 200, 200]);
      expect(idp.stats()).toMatchObject({ overlappingRefreshes: 1, refreshesInFlight: 0, reuseWithinLeeway: 1 });
    });

    it('does not count sequential refreshes as overlapping', async () => {
      const { idp } = setup();
      const first = await connect(idp);
      const second = tokensOf(await refresh(idp, first.refresh_token));
      await refresh(idp, second.refresh_token);
      expect(idp.stats()).toMatchObject({ overlappingRefreshes: 0, maxRefreshesInFlight: 1 });
    });
  });

  describe('access tokens', () => {
    it('expire after their lifetime and count the late use', async () => {
      const { idp, clock } = setup();
      const tokens = await connect(idp);
      clock.advanceSeconds(3599);
      expect((await idp.me(bearer(tokens.access_token))).status).toBe(200);
      clock.advanceSeconds(1);
      expect(await idp.me(bearer(tokens.access_token))).toEqual(UNAUTHORIZED_API);
      expect(idp.stats().expiredAccessTokenUses).toBe(1);
    });

    it('of a rotated pair keep working during the leeway and are revoked when it ends', async () => {
      const { idp, clock } = setup();
      const first = await connect(idp);
      await refresh(idp, first.refresh_token);
      clock.advanceSeconds(599);
      expect((await idp.me(bearer(first.access_token))).status).toBe(200);
      clock.advanceSeconds(1);
      expect(await idp.me(bearer(first.access_token))).toEqual(UNAUTHORIZED_API);
      expect(idp.stats()).toMatchObject({ revokedAccessTokenUses: 1, expiredAccessTokenUses: 0 });
    });

    it('need read:me for /me', async () => {
      const { idp } = setup();
      const tokens = await connect(idp, 'alice', 'read:jira-work offline_access');
      expect(await idp.me(bearer(tokens.access_token))).toEqual({
        status: 401,
        body: { code: 401, message: 'Unauthorized; scope does not match' },
      });
    });

    it('reach the profile, the sites and Jira on those sites only', async () => {
      const { idp } = setup();
      const tokens = await connect(idp);
      expect((await idp.me(bearer(tokens.access_token))).body).toMatchObject({
        account_id: accountIdFor('alice'),
        email: 'alice@sandbox.example',
      });
      const sites = (await idp.accessibleResources(bearer(tokens.access_token))).body as SandboxSite[];
      expect(sites).toHaveLength(4);
      const myself = await idp.jiraMyself(bearer(tokens.access_token), sites[0].id);
      expect(myself).toMatchObject({
        status: 200,
        body: { accountId: accountIdFor('alice'), active: true, displayName: 'Alice Andersen' },
      });
      idp.resolveUser('stranger');
      const strangersSite = idp.findUser('stranger')!.sites[0];
      expect(await idp.jiraMyself(bearer(tokens.access_token), strangersSite.id)).toMatchObject({
        status: 404,
        body: { code: 404, message: 'Not Found' },
        headers: { 'X-RateLimit-Remaining': '64999' },
      });
    });

    it('are refused when unknown or missing', async () => {
      const { idp } = setup();
      expect(await idp.accessibleResources(bearer('nope'))).toEqual(UNAUTHORIZED_API);
      expect(await idp.accessibleResources(undefined)).toEqual(UNAUTHORIZED_API);
    });
  });

  describe('grants', () => {
    it('stop working entirely when the user revokes the app', async () => {
      const { idp } = setup();
      const tokens = await connect(idp);
      expect(idp.revokeAccount(accountIdFor('alice'))).toBe(true);
      expect(await refresh(idp, tokens.refresh_token)).toEqual(INVALID_REFRESH);
      expect(await idp.me(bearer(tokens.access_token))).toEqual(UNAUTHORIZED_API);
      expect(idp.revokeAccount('alice')).toBe(false);
      expect(idp.stats().grantsRevoked).toBe(1);
    });

    it('start afresh when the user consents again after a revocation', async () => {
      const { idp } = setup();
      const old = await connect(idp);
      idp.revokeAccount('alice');
      const fresh = await connect(idp);
      expect((await refresh(idp, fresh.refresh_token)).status).toBe(200);
      expect(await refresh(idp, old.refresh_token)).toEqual(INVALID_REFRESH);
    });

    it('keep earlier tokens when the user consents again, with the new scopes', async () => {
      const { idp } = setup();
      const first = await connect(idp);
      const again = await connect(idp, 'alice', 'read:jira-work offline_access');
      expect(again.scope).toBe('read:jira-work offline_access');
      expect(tokensOf(await refresh(idp, first.refresh_token)).scope).toBe('read:jira-work offline_access');
    });
  });

  describe('consent lifetime', () => {
    it('ends the grant 365 days after consent, whatever the refreshes, and counts each refusal', async () => {
      const { idp, clock } = setup();
      let tokens = await connect(idp);
      for (let day = 60; day <= 360; day += 60) {
        clock.advanceSeconds(60 * DAY_SECONDS);
        tokens = tokensOf(await refresh(idp, tokens.refresh_token));
      }
      clock.advanceSeconds(5 * DAY_SECONDS - 1800);
      tokens = tokensOf(await refresh(idp, tokens.refresh_token));
      clock.advanceSeconds(1799);
      expect((await idp.me(bearer(tokens.access_token))).status).toBe(200);
      clock.advanceSeconds(1);
      expect(await idp.me(bearer(tokens.access_token))).toEqual(UNAUTHORIZED_API);
      expect(await refresh(idp, tokens.refresh_token)).toEqual(INVALID_REFRESH);
      expect(idp.stats()).toMatchObject({ consentsExpired: 1, grantsRevoked: 0 });
    });

    it('starts another year when the user consents again before the end', async () => {
      const { idp, clock } = setup();
      await connect(idp);
      clock.advanceSeconds(300 * DAY_SECONDS);
      let tokens = await connect(idp);
      for (let day = 360; day <= 660; day += 60) {
        clock.advanceSeconds(60 * DAY_SECONDS);
        tokens = tokensOf(await refresh(idp, tokens.refresh_token));
      }
      expect(idp.stats().consentsExpired).toBe(0);
    });

    it('starts a new grant when the user consents after the end: the old tokens stay dead', async () => {
      const { idp, clock } = setup();
      idp.updateSettings({ refreshInactivitySeconds: 400 * DAY_SECONDS });
      const old = await connect(idp);
      clock.advanceSeconds(365 * DAY_SECONDS);
      const fresh = await connect(idp);
      expect((await refresh(idp, fresh.refresh_token)).status).toBe(200);
      expect(await refresh(idp, old.refresh_token)).toEqual(INVALID_REFRESH);
    });

    it('can be shortened for tests, for grants already given too', async () => {
      const { idp, clock } = setup();
      const tokens = await connect(idp);
      expect(idp.updateSettings({ consentLifetimeSeconds: 3600 })).toMatchObject({ consentLifetimeSeconds: 3600 });
      clock.advanceSeconds(3599);
      const next = tokensOf(await refresh(idp, tokens.refresh_token));
      clock.advanceSeconds(1);
      expect(await refresh(idp, next.refresh_token)).toEqual(INVALID_REFRESH);
      expect(idp.stats().consentsExpired).toBe(1);
    });
  });

  describe('faults and resets', () => {
    it('answers the next N calls with the chosen status, then recovers', async () => {
      const { idp } = setup();
      const tokens = await connect(idp);
      idp.addFault({ count: 2, endpoint: 'token', status: 503 });
      expect(await refresh(idp, tokens.refresh_token)).toEqual({
        status: 503,
        body: { error: 'temporarily_unavailable', error_description: 'Service Unavailable' },
      });
      expect((await refresh(idp, tokens.refresh_token)).status).toBe(503);
      expect((await refresh(idp, tokens.refresh_token)).status).toBe(200);
      expect(idp.stats()).toMatchObject({ faultsServed: 2, refreshes: 1, reuseWithinLeeway: 0 });
    });

    it('answers every call for a number of seconds, then the next plan for its own seconds, then recovers', async () => {
      const { idp, clock } = setup();
      const tokens = await connect(idp);
      idp.addFault({ seconds: 60, endpoint: 'token', status: 503 });
      idp.addFault({ seconds: 20, endpoint: 'token', status: 429, retryAfterSeconds: 10 });
      expect(idp.stats().pendingFaults).toBe(2);
      for (let i = 0; i < 3; i++) expect((await refresh(idp, tokens.refresh_token)).status).toBe(503);
      // No call for most of the minute: the 429s still begin when the 503s end, at 60 s.
      clock.advanceSeconds(59);
      expect((await refresh(idp, tokens.refresh_token)).status).toBe(503);
      clock.advanceSeconds(1);
      const limited = await refresh(idp, tokens.refresh_token);
      expect(limited).toMatchObject({ status: 429, headers: { 'Retry-After': '10' } });
      expect(idp.stats().pendingFaults).toBe(1);
      clock.advanceSeconds(19);
      expect((await refresh(idp, tokens.refresh_token)).status).toBe(429);
      clock.advanceSeconds(1);
      expect(idp.stats().pendingFaults).toBe(0);
      expect((await refresh(idp, tokens.refresh_token)).status).toBe(200);
      expect(idp.stats()).toMatchObject({ faultsServed: 6, refreshes: 1 });
    });

    it('starts a plan by time only when the plans before it are served', async () => {
      const { idp, clock } = setup();
      const tokens = await connect(idp);
      idp.addFault({ count: 1, endpoint: 'token', status: 502 });
      idp.addFault({ seconds: 30, endpoint: 'token', status: 503 });
      clock.advanceSeconds(100);
      expect((await refresh(idp, tokens.refresh_token)).status).toBe(502);
      clock.advanceSeconds(29);
      expect((await refresh(idp, tokens.refresh_token)).status).toBe(503);
      clock.advanceSeconds(1);
      expect((await refresh(idp, tokens.refresh_token)).status).toBe(200);
    });

    it('sends Retry-After with 429 and keeps token and API faults apart', async () => {
      const { idp } = setup();
      const tokens = await connect(idp);
      idp.addFault({ count: 1, endpoint: 'api', status: 429, retryAfterSeconds: 30 });
      expect((await refresh(idp, tokens.refresh_token)).status).toBe(200);
      expect(await idp.accessibleResources(bearer(tokens.access_token))).toEqual({
        status: 429,
        body: { code: 429, message: 'Rate limit exceeded' },
        headers: { 'Retry-After': '30' },
      });
    });

    it('performs the refresh but holds the answer back on a timeout-only fault', async () => {
      const manual = manualSleep();
      const { idp } = setup(manual.sleep);
      const tokens = await connect(idp);
      idp.addFault({ count: 1, endpoint: 'all', timeoutMs: 30_000 });
      const slow = refresh(idp, tokens.refresh_token);
      await settle();
      expect(manual.pending).toEqual([30_000]);
      expect(idp.stats()).toMatchObject({ refreshes: 1, refreshesInFlight: 1 });
      expect((await refresh(idp, tokens.refresh_token)).status).toBe(200);
      expect(idp.stats()).toMatchObject({ reuseWithinLeeway: 1, overlappingRefreshes: 1 });
      manual.releaseAll();
      expect((await slow).status).toBe(200);
    });

    it('hangs and then answers the status when both are given', async () => {
      const manual = manualSleep();
      const { idp } = setup(manual.sleep);
      idp.addFault({ count: 1, endpoint: 'token', status: 500, timeoutMs: 5000 });
      const call = exchange(idp, issueCode(idp));
      await settle();
      expect(manual.pending).toEqual([5000]);
      manual.releaseAll();
      expect((await call).status).toBe(500);
    });

    it('reset forgets grants, ad-hoc users, faults, settings and counters', async () => {
      const { idp } = setup();
      const tokens = await connect(idp, 'temp-user');
      idp.addFault({ count: 5, endpoint: 'all', status: 500 });
      idp.updateSettings({ accessTokenTtlSeconds: 5 });
      idp.reset();
      expect(idp.findUser('temp-user')).toBeUndefined();
      expect(await refresh(idp, tokens.refresh_token)).toEqual(INVALID_REFRESH);
      expect(idp.stats()).toMatchObject({ pendingFaults: 0, refreshes: 0, tokenCalls: { refresh_token: 1, authorization_code: 0 } });
      expect((await connect(idp)).expires_in).toBe(3600);
    });
  });
});
