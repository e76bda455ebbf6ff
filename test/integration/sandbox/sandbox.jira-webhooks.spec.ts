import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import type { INestApplication } from '@nestjs/common';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { Test } from '@nestjs/testing';
import { jwtVerify } from 'jose';
import request from 'supertest';
import type { App } from 'supertest/types.js';
import { SandboxIdentityProvider } from '../../../src/sandbox/sandbox.idp.js';
import { SandboxModule } from '../../../src/sandbox/sandbox.module.js';
import { ManualClock } from '../../utils/connections.js';
import { WebhookReceiver } from '../webhooks/webhook-receiver.js';

const REDIRECT_URI = 'http://localhost:3000/auth/atlassian/callback';
const CLIENT = { client_id: 'hooks-client', client_secret: 'hooks-secret' };
const SCOPE = 'read:jira-work manage:jira-webhook offline_access read:me';
const START = '2026-03-02T09:40:00.000Z';

describe('sandbox Jira dynamic webhooks over HTTP', () => {
  const clock = new ManualClock(START);
  const receiver = new WebhookReceiver();
  let receiverUrl: string;
  let app: INestApplication<App>;
  let site: string;

  beforeAll(async () => {
    receiverUrl = await receiver.listen();
    const moduleRef = await Test.createTestingModule({
      imports: [
        SandboxModule.register({ clientId: CLIENT.client_id, clientSecret: CLIENT.client_secret, redirectUris: [REDIRECT_URI], clock }),
      ],
    }).compile();
    app = moduleRef.createNestApplication<NestExpressApplication>();
    await app.init();
  });
  afterAll(async () => {
    await app.close();
    await receiver.close();
  });

  const http = () => request(app.getHttpServer());

  async function tokenOf(user: string, sites: number | undefined): Promise<string> {
    const authorized = await http()
      .post('/sandbox/_control/authorize')
      .send({ user, sites, redirect_uri: REDIRECT_URI, scope: SCOPE })
      .expect(200);
    const tokens = await http()
      .post('/sandbox/oauth/token')
      .send({ grant_type: 'authorization_code', ...CLIENT, code: authorized.body.code, redirect_uri: REDIRECT_URI })
      .expect(200);
    return tokens.body.access_token as string;
  }

  let token: string;
  const bearer = () => ({ Authorization: `Bearer ${token}` });
  const hooks = () => `/sandbox/ex/jira/${site}/rest/api/3/webhook`;

  beforeEach(async () => {
    app.get(SandboxIdentityProvider).reset();
    clock.set(new Date(START));
    receiver.received.length = 0;
    token = await tokenOf('hooks-user', 1);
    const sites = await http().get('/sandbox/oauth/token/accessible-resources').set(bearer()).expect(200);
    site = (sites.body as { id: string }[])[0].id;
  });

  it('registers what Jira supports, refuses the rest in its result, lists with the expiry and extends', async () => {
    const registered = await http()
      .post(hooks())
      .set(bearer())
      .send({
        url: receiverUrl,
        webhooks: [
          { events: ['jira:issue_updated'], jqlFilter: 'project = ABC AND status != Done' },
          { events: ['jira:issue_updated'], jqlFilter: 'summary ~ "x"' },
          { events: ['sprint_started'], jqlFilter: 'project = ABC' },
          { events: ['jira:issue_created'], jqlFilter: 'project ~ ABC' },
        ],
      })
      .expect(200);
    expect(registered.body.webhookRegistrationResult).toEqual([
      { createdWebhookId: 1 },
      { errors: ['The field summary is not supported in webhook JQL filters.'] },
      { errors: ['The event sprint_started is not supported for dynamic webhooks.'] },
      { errors: ['The clause "project ~ ABC" is not supported in webhook JQL filters: use =, !=, IN or NOT IN.'] },
    ]);
    const listed = await http().get(hooks()).set(bearer()).expect(200);
    expect(listed.body).toMatchObject({
      isLast: true,
      values: [
        {
          id: 1,
          events: ['jira:issue_updated'],
          jqlFilter: 'project = ABC AND status != Done',
          expirationDate: Date.parse(START) + 30 * 86_400_000,
        },
      ],
    });

    clock.advance(1_800_000);
    const extended = await http()
      .put(`${hooks()}/refresh`)
      .set(bearer())
      .send({ webhookIds: [1] })
      .expect(200);
    expect(extended.body).toEqual({ expirationDate: '2026-04-01T10:10:00.000+0000' });
    expect(app.get(SandboxIdentityProvider).jiraWebhookStats()).toMatchObject({ live: 1, registered: 1, extended: 1, expired: 0 });
  });

  it("lets a registration expire silently after its lifetime, and deletes only the caller's own", async () => {
    await http().post('/sandbox/_control/settings').send({ jiraWebhookLifetimeSeconds: 60 }).expect(200);
    // alice and bob share the site acme.
    token = await tokenOf('alice', undefined);
    const sites = await http().get('/sandbox/oauth/token/accessible-resources').set(bearer()).expect(200);
    site = (sites.body as { id: string; name: string }[]).find((s) => s.name === 'acme')!.id;
    await http()
      .post(hooks())
      .set(bearer())
      .send({
        url: receiverUrl,
        webhooks: [
          { events: ['jira:issue_created'], jqlFilter: 'project = ABC' },
          { events: ['comment_created'], jqlFilter: 'project = ABC' },
        ],
      })
      .expect(200);
    const other = await tokenOf('bob', undefined);
    await http()
      .delete(hooks())
      .set({ Authorization: `Bearer ${other}` })
      .send({ webhookIds: [1, 2] })
      .expect(202);
    await http()
      .delete(hooks())
      .set(bearer())
      .send({ webhookIds: [2] })
      .expect(202);
    expect((await http().get(hooks()).set(bearer()).expect(200)).body.values.map((v: { id: number }) => v.id)).toEqual([1]);

    clock.advance(60_000);
    expect((await http().get(hooks()).set(bearer()).expect(200)).body.values).toEqual([]);
    expect(app.get(SandboxIdentityProvider).jiraWebhookStats()).toMatchObject({ live: 0, deleted: 1, expired: 1 });
  });

  it('delivers a change to the matching registrations, signed HS256 with the client secret, and repeats it on request', async () => {
    await http()
      .post(hooks())
      .set(bearer())
      .send({
        url: receiverUrl,
        webhooks: [
          { events: ['jira:issue_updated'], jqlFilter: 'project IN (ABC, XYZ)' },
          { events: ['jira:issue_updated'], jqlFilter: 'project = OTHER' },
          { events: ['comment_created'], jqlFilter: 'project = ABC' },
        ],
      })
      .expect(200);
    const delivered = await http()
      .post('/sandbox/_control/jira-webhooks/deliveries')
      .send({ cloudId: site, issueKey: 'ABC-12', webhookEvent: 'jira:issue_updated', duplicate: true })
      .expect(200);
    expect(delivered.body).toMatchObject({ matchedWebhookIds: [1], statuses: [200, 200] });
    expect(receiver.received).toHaveLength(2);
    const [first, second] = receiver.received;
    expect(first.headers['x-atlassian-webhook-identifier']).toBe(delivered.body.identifier);
    expect(second.headers['x-atlassian-webhook-identifier']).toBe(delivered.body.identifier);
    expect(first.raw.equals(second.raw)).toBe(true);
    const jwt = /^Bearer (.+)$/.exec(first.headers.authorization!)![1];
    const { payload, protectedHeader } = await jwtVerify(jwt, new TextEncoder().encode(CLIENT.client_secret), {
      algorithms: ['HS256'],
      currentDate: clock.now(),
    });
    expect(protectedHeader.alg).toBe('HS256');
    expect(payload.iss).toBe(CLIENT.client_id);
    expect(JSON.parse(first.raw.toString('utf8'))).toMatchObject({
      webhookEvent: 'jira:issue_updated',
      matchedWebhookIds: [1],
      issue: { key: 'ABC-12', self: expect.stringMatching(/^https:\/\/hooks-user-1\.atlassian\.net\/rest\/api\/3\/issue\//) },
    });

    const none = await http()
      .post('/sandbox/_control/jira-webhooks/deliveries')
      .send({ cloudId: site, issueKey: 'NOPE-1', duplicate: false })
      .expect(200);
    expect(none.body).toEqual({ identifier: null, matchedWebhookIds: [], statuses: [] });
    await http().post('/sandbox/_control/jira-webhooks/deliveries').send({ cloudId: 'unknown-site' }).expect(404);
  });
});
