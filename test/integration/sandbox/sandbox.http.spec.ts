import type { INestApplication } from '@nestjs/common';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { Test } from '@nestjs/testing';
import type { App } from 'supertest/types.js';
import request from 'supertest';
import type { Clock } from '../../../src/common/clock.js';
import { SandboxIdentityProvider } from '../../../src/sandbox/sandbox.idp.js';
import { SandboxModule } from '../../../src/sandbox/sandbox.module.js';
import { accountIdFor, type SandboxSite } from '../../../src/sandbox/sandbox.users.js';

const REDIRECT_URI = 'http://localhost:3000/auth/atlassian/callback';
const CLIENT = { client_id: 'http-client', client_secret: 'http-secret' };
const SCOPE = 'read:jira-work offline_access read:me';
const AUTHORIZE = {
  audience: 'api.atlassian.com',
  client_id: CLIENT.client_id,
  scope: SCOPE,
  redirect_uri: REDIRECT_URI,
  state: 'state-<1>',
  response_type: 'code',
  prompt: 'consent',
};

describe('sandbox over HTTP', () => {
  let app: INestApplication<App>;
  let now: Date;

  beforeAll(async () => {
    now = new Date('2026-03-01T10:00:00Z');
    const clock: Clock = { now: () => now };
    const moduleRef = await Test.createTestingModule({
      imports: [
        SandboxModule.register({ clientId: CLIENT.client_id, clientSecret: CLIENT.client_secret, redirectUris: [REDIRECT_URI], clock }),
      ],
    }).compile();
    const express = moduleRef.createNestApplication<NestExpressApplication>();
    // The main app parses queries with qs, which turns repeats into arrays and brackets into objects.
    express.set('query parser', 'extended');
    app = express;
    await app.init();
  });

  afterAll(() => app.close());

  beforeEach(() => app.get(SandboxIdentityProvider).reset());

  const http = () => request(app.getHttpServer());

  async function acceptAs(user: string): Promise<URL> {
    const response = await http()
      .post('/sandbox/authorize')
      .type('form')
      .send({ ...AUTHORIZE, user, decision: 'accept' })
      .expect(302);
    return new URL(response.headers.location);
  }

  describe('consent page', () => {
    it('shows the banner, the app, the scopes in plain words and the users, escaping what it echoes', async () => {
      const response = await http().get('/sandbox/authorize').query(AUTHORIZE).expect(200);
      expect(response.headers['content-type']).toMatch(/^text\/html/);
      expect(response.headers['cache-control']).toBe('no-store');
      expect(response.text).toContain('Sandbox — not Atlassian');
      expect(response.text).toContain('Read Jira project and issue data');
      expect(response.text).toContain('Stay connected when you are not using the app');
      expect(response.text).toContain('See your profile');
      expect(response.text).toContain('Alice Andersen');
      expect(response.text).toContain('value="state-&#60;1&#62;"');
      expect(response.text).not.toContain('state-<1>');
    });

    it('shows an error page and does not redirect for an unregistered redirect_uri', async () => {
      const response = await http()
        .get('/sandbox/authorize')
        .query({ ...AUTHORIZE, redirect_uri: `${REDIRECT_URI}/` })
        .expect(400);
      expect(response.headers.location).toBeUndefined();
      expect(response.text).toContain('unauthorized_client');
      expect(response.text).toContain('redirect_uri is not registered for client');
    });

    it.each(['state=again', 'state[x]=nested'])('refuses a repeated or structured query parameter (%s)', async (extra) => {
      const response = await http()
        .get(`/sandbox/authorize?${new URLSearchParams(AUTHORIZE).toString()}&${extra}`)
        .expect(400);
      expect(response.text).toContain('The state parameter must be given exactly once.');
    });

    it('sends a denial back to the app', async () => {
      const response = await http()
        .post('/sandbox/authorize')
        .type('form')
        .send({ ...AUTHORIZE, decision: 'deny' })
        .expect(302);
      expect(response.headers.location).toBe(
        `${REDIRECT_URI}?error=access_denied&error_description=User%20did%20not%20authorize%20the%20request&state=state-%3C1%3E`,
      );
    });

    it('shows the form again when the user name is not acceptable', async () => {
      const response = await http()
        .post('/sandbox/authorize')
        .type('form')
        .send({ ...AUTHORIZE, other_user: 'No Spaces', decision: 'accept' })
        .expect(400);
      expect(response.text).toContain('A user name is 1 to 40 characters');
      expect(response.text).toContain('name="decision" value="accept"');
    });
  });

  describe('the whole flow', () => {
    it('walks consent, a form-encoded exchange, /me, accessible-resources and Jira myself', async () => {
      const callback = await acceptAs('alice');
      expect(callback.searchParams.get('state')).toBe('state-<1>');
      const tokens = await http()
        .post('/sandbox/oauth/token')
        .type('form')
        .send({ grant_type: 'authorization_code', ...CLIENT, code: callback.searchParams.get('code'), redirect_uri: REDIRECT_URI })
        .expect(200);
      expect(tokens.headers['cache-control']).toBe('no-store');
      expect(tokens.body).toMatchObject({ expires_in: 3600, token_type: 'Bearer', scope: SCOPE, refresh_token: expect.any(String) });
      const auth = `Bearer ${tokens.body.access_token}`;

      const me = await http().get('/sandbox/me').set('Authorization', auth).expect(200);
      expect(me.body).toMatchObject({ account_id: accountIdFor('alice'), name: 'Alice Andersen', email: 'alice@sandbox.example' });

      const resources = await http().get('/sandbox/oauth/token/accessible-resources').set('Authorization', auth).expect(200);
      const sites = resources.body as SandboxSite[];
      expect(sites).toHaveLength(4);
      expect(new Set(sites.map((site) => site.id)).size).toBe(3);

      const myself = await http().get(`/sandbox/ex/jira/${sites[0].id}/rest/api/3/myself`).set('Authorization', auth).expect(200);
      expect(myself.body).toMatchObject({
        accountId: accountIdFor('alice'),
        displayName: 'Alice Andersen',
        active: true,
        timeZone: expect.any(String),
      });
      await http().get('/sandbox/ex/jira/00000000-0000-4000-a000-000000000000/rest/api/3/myself').set('Authorization', auth).expect(404);
    });

    it('exchanges with a JSON body and refreshes with rotation', async () => {
      const callback = await acceptAs('bob');
      const exchange = { grant_type: 'authorization_code', ...CLIENT, code: callback.searchParams.get('code'), redirect_uri: REDIRECT_URI };
      const first = await http().post('/sandbox/oauth/token').send(exchange).expect(200);
      await http()
        .post('/sandbox/oauth/token')
        .send(exchange)
        .expect(403, { error: 'invalid_grant', error_description: 'Invalid authorization code' });
      const second = await http()
        .post('/sandbox/oauth/token')
        .send({ grant_type: 'refresh_token', ...CLIENT, refresh_token: first.body.refresh_token })
        .expect(200);
      expect(second.body.refresh_token).not.toBe(first.body.refresh_token);
      await http()
        .post('/sandbox/oauth/token')
        .send({ grant_type: 'refresh_token', ...CLIENT, client_secret: 'wrong', refresh_token: second.body.refresh_token })
        .expect(401, { error: 'access_denied', error_description: 'Unauthorized' });
    });

    it('refuses expired and unknown access tokens', async () => {
      const code = (await acceptAs('carol')).searchParams.get('code');
      const tokens = await http()
        .post('/sandbox/oauth/token')
        .send({ grant_type: 'authorization_code', ...CLIENT, code, redirect_uri: REDIRECT_URI })
        .expect(200);
      await http()
        .get('/sandbox/oauth/token/accessible-resources')
        .set('Authorization', `Bearer ${tokens.body.access_token}`)
        .expect(200, []);
      now = new Date(now.getTime() + 3600 * 1000);
      await http()
        .get('/sandbox/me')
        .set('Authorization', `Bearer ${tokens.body.access_token}`)
        .expect(401, { code: 401, message: 'Unauthorized' });
      await http().get('/sandbox/me').expect(401);
    });
  });

  describe('control endpoints', () => {
    async function connect(user: string): Promise<{ access_token: string; refresh_token: string; expires_in: number }> {
      const authorized = await http()
        .post('/sandbox/_control/authorize')
        .send({ user, sites: 2, redirect_uri: REDIRECT_URI, scope: SCOPE, state: 's' })
        .expect(200);
      expect(authorized.body).toMatchObject({ state: 's', accountId: accountIdFor(user) });
      const tokens = await http()
        .post('/sandbox/oauth/token')
        .send({ grant_type: 'authorization_code', ...CLIENT, code: authorized.body.code, redirect_uri: REDIRECT_URI })
        .expect(200);
      return tokens.body;
    }

    const refresh = (refreshToken: string) =>
      http()
        .post('/sandbox/oauth/token')
        .send({ grant_type: 'refresh_token', ...CLIENT, refresh_token: refreshToken });

    it('answers 503 for the next token call, then recovers', async () => {
      const tokens = await connect('fault-1');
      await http().post('/sandbox/_control/faults').send({ count: 1, status: 503 }).expect(200, { pendingFaults: 1 });
      await refresh(tokens.refresh_token).expect(503, { error: 'temporarily_unavailable', error_description: 'Service Unavailable' });
      await refresh(tokens.refresh_token).expect(200);
    });

    it('answers 429 with Retry-After', async () => {
      const tokens = await connect('fault-2');
      await http().post('/sandbox/_control/faults').send({ count: 1, status: 429, retryAfterSeconds: 12, endpoint: 'all' }).expect(200);
      const limited = await refresh(tokens.refresh_token).expect(429);
      expect(limited.headers['retry-after']).toBe('12');
    });

    it('refuses a malformed fault', async () => {
      await http()
        .post('/sandbox/_control/faults')
        .send({ count: 0, status: 503 })
        .expect(400, { error: 'invalid_request', error_description: 'count must be an integer from 1 to 100000.' });
      await http().post('/sandbox/_control/faults').send({ count: 1, status: 418 }).expect(400);
      await http()
        .post('/sandbox/_control/faults')
        .send({ count: 1, seconds: 10, status: 503 })
        .expect(400, { error: 'invalid_request', error_description: 'Give a count or a number of seconds.' });
    });

    it('revokes a grant and counts what happened', async () => {
      const tokens = await connect('leaver');
      await http()
        .post(`/sandbox/_control/grants/${encodeURIComponent(accountIdFor('leaver'))}/revoke`)
        .expect(200, { revoked: true });
      await refresh(tokens.refresh_token).expect(403, { error: 'invalid_grant', error_description: 'Unknown or invalid refresh token.' });
      await http().post('/sandbox/_control/grants/nobody/revoke').expect(404);
      const stats = await http().get('/sandbox/_control/stats').expect(200);
      expect(stats.body).toMatchObject({ grantsRevoked: 1, codesExchanged: 1, tokenCalls: { authorization_code: 1, refresh_token: 1 } });
    });

    it('creates users, changes settings and latency, and resets', async () => {
      const user = await http().post('/sandbox/_control/users').send({ user: 'many-sites', sites: 7 }).expect(201);
      expect(user.body.sites).toHaveLength(7);
      await http().post('/sandbox/_control/users').send({ user: 'Bad Name' }).expect(400);
      const settings = await http()
        .post('/sandbox/_control/settings')
        .send({ accessTokenTtlSeconds: 60, omitRefreshToken: true, consentLifetimeSeconds: 600 })
        .expect(200);
      expect(settings.body).toMatchObject({
        accessTokenTtlSeconds: 60,
        reuseLeewaySeconds: 600,
        omitRefreshToken: true,
        consentLifetimeSeconds: 600,
      });
      await http().post('/sandbox/_control/settings').send({ consentLifetimeSeconds: 0 }).expect(400);
      const shortLived = await connect('short-lived');
      expect(shortLived.expires_in).toBe(60);
      expect(shortLived).not.toHaveProperty('refresh_token');
      await http().post('/sandbox/_control/latency').send({ tokenMs: 1 }).expect(200, { tokenMs: 1, apiMs: 0 });
      await http().post('/sandbox/_control/reset').expect(200, { reset: true });
      expect((await connect('after-reset')).expires_in).toBe(3600);
    });
  });
});
