import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, expect, it } from '@jest/globals';
import { rawApi } from '../utils/api.js';
import { startTestApp, TEST_API_KEY, type TestApp } from '../utils/app.js';
import { describePostgres } from '../utils/database.js';
import { connectUser } from './connect-browser.js';

const CLOUD_ID = '5a6b7c8d-1111-4222-a333-444455556666';

interface Received {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
}

/**
 * Atlassian's API as a plain server that records what reached it: /me and accessible-resources for the connect flow,
 * and whatever answer a test chooses for the product calls.
 */
class RecordingApi {
  private readonly server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      if (req.url === '/me') return json(res, { account_id: '712020:forwarding', name: 'Forwarding' });
      if (req.url === '/oauth/token/accessible-resources') {
        return json(res, [{ id: CLOUD_ID, url: 'https://fwd.atlassian.net', name: 'fwd', scopes: ['read:jira-work'] }]);
      }
      this.received.push({ method: req.method!, url: req.url!, headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      this.answer(res);
    });
  });
  received: Received[] = [];
  answer: (res: ServerResponse) => void = (res) => res.end();
  url = '';

  async start(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

function json(res: ServerResponse, body: unknown): void {
  res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify(body));
}

describePostgres('the proxy forwards only what it may, both ways', () => {
  const api = new RecordingApi();
  let app: TestApp;

  beforeAll(async () => {
    await api.start();
    app = await startTestApp({ env: { ATLASSIAN_API_URL: api.url } });
    const { response } = await connectUser(app, 'fwd-user', 'alice');
    expect(response.status).toBe(200);
  });
  afterAll(async () => {
    await app?.close();
    await api.close();
  });
  beforeEach(() => {
    api.received = [];
  });

  const base = `/v1/users/fwd-user/proxy/jira/${CLOUD_ID}`;

  it("sends the user's token, the path and query as sent, the body and the allowed headers; never the caller's credentials", async () => {
    api.answer = (res) => res.writeHead(201, { 'Content-Type': 'application/json' }).end('{"id":"10001"}');
    const body = '{"body":{"type":"doc","version":1,"content":[]}}';
    const answer = await rawApi(
      app,
      'POST',
      `${base}/rest/api/3/issue/ABC-1/comment?expand=renderedBody&expand=properties&jql=a%20%3D%20"b"`,
      {
        headers: {
          Accept: 'application/json',
          'Accept-Language': 'de-DE',
          'Content-Type': 'application/json',
          'X-Atlassian-Token': 'no-check',
          'X-ExperimentalApi': 'opt-in',
          Cookie: 'session=caller-cookie',
          'X-Forwarded-For': '203.0.113.7',
          'X-Forwarded-Host': 'evil.example',
          Forwarded: 'for=203.0.113.7',
          'X-Real-IP': '203.0.113.7',
          Origin: 'https://evil.example',
          'User-Agent': 'caller/1.0',
          'Proxy-Authorization': 'Basic eHg6eXk=',
        },
        body,
      },
    );
    expect([answer.status, answer.text]).toEqual([201, '{"id":"10001"}']);
    const [request] = api.received;
    expect([request.method, request.url, request.body]).toEqual([
      'POST',
      `/ex/jira/${CLOUD_ID}/rest/api/3/issue/ABC-1/comment?expand=renderedBody&expand=properties&jql=a%20%3D%20"b"`,
      body,
    ]);
    expect(request.headers.authorization).toMatch(/^Bearer sbx_at_/);
    expect(request.headers.authorization).not.toContain(TEST_API_KEY);
    expect(request.headers).toMatchObject({
      accept: 'application/json',
      'accept-language': 'de-DE',
      'content-type': 'application/json',
      'x-atlassian-token': 'no-check',
      'x-experimentalapi': 'opt-in',
      'content-length': String(body.length),
    });
    expect(Object.keys(request.headers).sort()).toEqual(
      [
        'accept',
        'accept-encoding',
        'accept-language',
        'authorization',
        'connection',
        'content-length',
        'content-type',
        'host',
        'x-atlassian-token',
        'x-experimentalapi',
      ].sort(),
    );
  });

  it("answers Atlassian's status and body with only the allowed headers, its own no-store kept", async () => {
    api.answer = (res) =>
      res
        .writeHead(429, {
          'Content-Type': 'application/json;charset=UTF-8',
          'Retry-After': '7',
          'RateLimit-Reason': 'jira-burst-based',
          'X-RateLimit-Limit': '350',
          'X-RateLimit-Remaining': '0',
          'X-RateLimit-Reset': '2026-03-02T09:01Z',
          'X-RateLimit-NearLimit': 'true',
          'Beta-RateLimit-Policy': '"tenant-app-quota";q=100100;w=3600',
          'Beta-RateLimit': '"tenant-app-quota";r=0;t=2788',
          'Beta-Retry-After': '2788',
          Link: '<https://fwd.atlassian.net/rest/api/3/x?startAt=50>; rel="next"',
          'X-AREQUESTID': 'b7a1c2',
          'Set-Cookie': 'atlassian.xsrf.token=secret; Path=/',
          Server: 'AtlassianEdge',
          Location: 'https://evil.example/',
          'Cache-Control': 'max-age=600',
          'Strict-Transport-Security': 'max-age=1',
          'X-Seraph-LoginReason': 'OK',
          'WWW-Authenticate': 'OAuth realm="x"',
        })
        .end('{"code":429,"message":"Rate limit exceeded"}');
    const answer = await rawApi(app, 'GET', `${base}/rest/api/3/myself`);
    expect([answer.status, answer.text]).toEqual([429, '{"code":429,"message":"Rate limit exceeded"}']);
    expect(answer.headers).toMatchObject({
      'content-type': 'application/json;charset=UTF-8',
      'retry-after': '7',
      'ratelimit-reason': 'jira-burst-based',
      'x-ratelimit-limit': '350',
      'x-ratelimit-remaining': '0',
      'x-ratelimit-reset': '2026-03-02T09:01Z',
      'x-ratelimit-nearlimit': 'true',
      'beta-ratelimit-policy': '"tenant-app-quota";q=100100;w=3600',
      'beta-ratelimit': '"tenant-app-quota";r=0;t=2788',
      'beta-retry-after': '2788',
      link: '<https://fwd.atlassian.net/rest/api/3/x?startAt=50>; rel="next"',
      'x-arequestid': 'b7a1c2',
      'cache-control': 'no-store',
    });
    // Atlassian's Strict-Transport-Security is not passed on: the service sends its own only when PUBLIC_URL is https.
    for (const name of ['set-cookie', 'server', 'location', 'x-seraph-loginreason', 'www-authenticate', 'strict-transport-security'])
      expect(answer.headers[name]).toBeUndefined();
  });
});
