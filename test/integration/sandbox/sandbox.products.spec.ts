import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import type { INestApplication } from '@nestjs/common';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { Test } from '@nestjs/testing';
import request from 'supertest';
import type { App } from 'supertest/types.js';
import { SandboxIdentityProvider } from '../../../src/sandbox/sandbox.idp.js';
import { SandboxModule } from '../../../src/sandbox/sandbox.module.js';
import { ManualClock } from '../../utils/connections.js';

const REDIRECT_URI = 'http://localhost:3000/auth/atlassian/callback';
const CLIENT = { client_id: 'products-client', client_secret: 'products-secret' };
const SCOPE = 'read:jira-work offline_access read:me';
const REASONS = ['jira-quota-global-based', 'jira-quota-tenant-based', 'jira-burst-based', 'jira-per-issue-on-write'];

describe('sandbox product APIs and rate limits over HTTP', () => {
  const clock = new ManualClock('2026-03-02T09:40:00.000Z');
  let app: INestApplication<App>;
  let token: string;
  let site: string;
  let otherSite: string;

  beforeAll(async () => {
    const moduleRef = await Test.createTestingModule({
      imports: [
        SandboxModule.register({ clientId: CLIENT.client_id, clientSecret: CLIENT.client_secret, redirectUris: [REDIRECT_URI], clock }),
      ],
    }).compile();
    app = moduleRef.createNestApplication<NestExpressApplication>();
    await app.init();
  });
  afterAll(() => app.close());

  const http = () => request(app.getHttpServer());
  const bearer = () => ({ Authorization: `Bearer ${token}` });

  beforeEach(async () => {
    app.get(SandboxIdentityProvider).reset();
    clock.set(new Date('2026-03-02T09:40:00.000Z'));
    const authorized = await http()
      .post('/sandbox/_control/authorize')
      .send({ user: 'products-user', sites: 2, redirect_uri: REDIRECT_URI, scope: SCOPE })
      .expect(200);
    const tokens = await http()
      .post('/sandbox/oauth/token')
      .send({ grant_type: 'authorization_code', ...CLIENT, code: authorized.body.code, redirect_uri: REDIRECT_URI })
      .expect(200);
    token = tokens.body.access_token;
    const sites = await http().get('/sandbox/oauth/token/accessible-resources').set(bearer()).expect(200);
    [site, otherSite] = (sites.body as { id: string; name: string }[]).sort((a, b) => a.name.localeCompare(b.name)).map((s) => s.id);
  });

  it('reads, edits and finds issues, in Jira shapes', async () => {
    const read = await http().get(`/sandbox/ex/jira/${site}/rest/api/3/issue/abc-7`).set(bearer()).expect(200);
    expect(read.body).toMatchObject({ id: '10000', key: 'ABC-7', fields: { summary: 'Sandbox issue ABC-7' } });
    clock.advance(1000);
    await http()
      .put(`/sandbox/ex/jira/${site}/rest/api/3/issue/ABC-7`)
      .set(bearer())
      .send({ fields: { summary: 'Renamed' } })
      .expect(204);
    const byId = await http().get(`/sandbox/ex/jira/${site}/rest/api/2/issue/10000`).set(bearer()).expect(200);
    expect(byId.body.fields).toEqual({ summary: 'Renamed', updated: '2026-03-02T09:40:01.000Z' });
    await http()
      .put(`/sandbox/ex/jira/${site}/rest/api/3/issue/ABC-7`)
      .set(bearer())
      .send({ fields: { summary: 7 } })
      .expect(400);
    const found = await http()
      .post(`/sandbox/ex/jira/${site}/rest/api/3/search/jql`)
      .set(bearer())
      .send({ jql: 'project = ABC' })
      .expect(200);
    expect(found.body).toMatchObject({ issues: [{ key: 'ABC-7' }], isLast: true });
    await http()
      .get(`/sandbox/ex/jira/${otherSite}/rest/api/3/search/jql?maxResults=5`)
      .set(bearer())
      .expect(200, { issues: [], isLast: true });
    await http().get(`/sandbox/ex/jira/${site}/rest/api/3/issue/99999`).set(bearer()).expect(404);
    await http().get(`/sandbox/ex/jira/${site}/rest/api/4/issue/ABC-7`).set(bearer()).expect(404);
  });

  it('streams an attachment of the size its id says, and serves a Confluence page', async () => {
    const attachment = await http()
      .get(`/sandbox/ex/jira/${site}/rest/api/3/attachment/content/200000`)
      .set(bearer())
      .buffer(true)
      .parse((res, done) => {
        let length = 0;
        res.on('data', (chunk: Buffer) => (length += chunk.length));
        res.on('end', () => done(null, length));
      })
      .expect(200);
    expect([attachment.headers['content-type'], attachment.headers['content-length'], attachment.body]).toEqual([
      'application/octet-stream',
      '200000',
      200_000,
    ]);
    const page = await http().get(`/sandbox/ex/confluence/${site}/wiki/api/v2/pages/42`).set(bearer()).expect(200);
    expect(page.body).toMatchObject({ id: '42', status: 'current', title: 'Sandbox page 42' });
  });

  it("refuses a site that is not the user's, and an unknown token", async () => {
    await http().get(`/sandbox/ex/jira/00000000-0000-4000-a000-000000000000/rest/api/3/myself`).set(bearer()).expect(404);
    await http().get(`/sandbox/ex/jira/${site}/rest/api/3/myself`).set({ Authorization: 'Bearer nope' }).expect(401);
  });

  it("answers every product call with Atlassian's rate-limit headers, near the limit too", async () => {
    await http().post('/sandbox/_control/settings').send({ hourlyQuota: 10 }).expect(200);
    const first = await http().get(`/sandbox/ex/jira/${site}/rest/api/3/myself`).set(bearer()).expect(200);
    expect(first.headers).toMatchObject({
      'x-ratelimit-limit': '10',
      'x-ratelimit-remaining': '9',
      'x-ratelimit-reset': '2026-03-02T10:00Z',
      'beta-ratelimit-policy': '"global-app-quota";q=10;w=3600',
      'beta-ratelimit': '"global-app-quota";r=9;t=1200',
    });
    expect(first.headers['x-ratelimit-nearlimit']).toBeUndefined();
    for (let i = 0; i < 7; i++) await http().get(`/sandbox/ex/jira/${site}/rest/api/3/myself`).set(bearer()).expect(200);
    const near = await http().get(`/sandbox/ex/jira/${site}/rest/api/3/myself`).set(bearer()).expect(200);
    expect([near.headers['x-ratelimit-remaining'], near.headers['x-ratelimit-nearlimit']]).toEqual(['1', 'true']);
    const me = await http().get('/sandbox/me').set(bearer()).expect(200);
    expect(me.headers['x-ratelimit-limit']).toBeUndefined();
  });

  it('answers 429 jira-quota-global-based until the next hour once the hourly quota is spent', async () => {
    await http().post('/sandbox/_control/settings').send({ hourlyQuota: 1 }).expect(200);
    await http().get(`/sandbox/ex/jira/${site}/rest/api/3/myself`).set(bearer()).expect(200);
    const limited = await http().get(`/sandbox/ex/jira/${otherSite}/rest/api/3/issue/A-1`).set(bearer()).expect(429);
    expect(limited.headers).toMatchObject({
      'retry-after': '1200',
      'ratelimit-reason': 'jira-quota-global-based',
      'x-ratelimit-remaining': '0',
    });
    clock.advance(1_200_000);
    await http().get(`/sandbox/ex/jira/${site}/rest/api/3/myself`).set(bearer()).expect(200);
  });

  it.each(REASONS)('answers 429 with RateLimit-Reason %s and Retry-After when told to', async (reason) => {
    await http()
      .post('/sandbox/_control/faults')
      .send({ count: 1, endpoint: 'api', status: 429, retryAfterSeconds: 90, rateLimitReason: reason })
      .expect(200);
    const limited = await http().put(`/sandbox/ex/jira/${site}/rest/api/3/issue/A-1`).set(bearer()).send({}).expect(429);
    expect(limited.headers).toMatchObject({ 'retry-after': '90', 'ratelimit-reason': reason, 'x-ratelimit-reset': '2026-03-02T09:42Z' });
    expect(limited.body).toEqual({ code: 429, message: 'Rate limit exceeded' });
    await http().put(`/sandbox/ex/jira/${site}/rest/api/3/issue/A-1`).set(bearer()).send({}).expect(204);
  });

  it('keeps a fault for the product calls under the path it names', async () => {
    await http()
      .post('/sandbox/_control/faults')
      .send({ count: 1, endpoint: 'api', status: 429, rateLimitReason: REASONS[0], productPath: '/rest/api/3/issue' })
      .expect(200);
    await http().get(`/sandbox/ex/jira/${site}/rest/api/3/myself`).set(bearer()).expect(200);
    await http().get('/sandbox/me').set(bearer()).expect(200);
    await http().get(`/sandbox/ex/jira/${site}/rest/api/3/issue/A-1`).set(bearer()).expect(429);
    await http().get(`/sandbox/ex/jira/${site}/rest/api/3/issue/A-1`).set(bearer()).expect(200);
    await http().post('/sandbox/_control/faults').send({ count: 1, endpoint: 'token', status: 503, productPath: '/x' }).expect(400);
  });

  it('refuses a reason without a 429, or one Atlassian does not send', async () => {
    await http().post('/sandbox/_control/faults').send({ count: 1, endpoint: 'api', status: 503, rateLimitReason: REASONS[0] }).expect(400);
    await http()
      .post('/sandbox/_control/faults')
      .send({ count: 1, endpoint: 'api', status: 429, rateLimitReason: 'jira-made-up' })
      .expect(400);
  });

  it('lists the API calls it answered, with time, method, path and status', async () => {
    await http().post('/sandbox/_control/faults').send({ count: 1, endpoint: 'api', status: 429, rateLimitReason: REASONS[2] }).expect(200);
    await http().get(`/sandbox/ex/jira/${site}/rest/api/3/myself`).set(bearer()).expect(429);
    clock.advance(500);
    await http().get(`/sandbox/ex/confluence/${site}/wiki/api/v2/pages/7`).set(bearer()).expect(200);
    const { body } = await http().get('/sandbox/_control/api-calls').expect(200);
    expect(body.calls.slice(-2)).toEqual([
      { at: '2026-03-02T09:40:00.000Z', method: 'GET', path: `/ex/jira/${site}/rest/api/3/myself`, status: 429 },
      { at: '2026-03-02T09:40:00.500Z', method: 'GET', path: `/ex/confluence/${site}/wiki/api/v2/pages/7`, status: 200 },
    ]);
    expect((await http().get('/sandbox/_control/stats').expect(200)).body.apiCalls).toBe(body.calls.length);
  });
});
