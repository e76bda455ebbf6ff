import { spawn } from 'node:child_process';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { connect } from 'node:net';
import type { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import type { AppConfig } from '../config/app-config.js';
import { AtlassianClient, mergeResources, productError } from './atlassian.client.js';
import { AtlassianCallGate, type CallOutcome, type GatedCall, type GateRefusal } from './atlassian-call.gate.js';
import { AtlassianError } from './atlassian.errors.js';

interface Recorded {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: string;
  /** The client's end of the connection the request came over. */
  clientPort: number | undefined;
}

/** A stand-in Atlassian whose next answer each test chooses. */
class FakeAtlassian {
  server: Server = createServer((req, res) => this.handle(req, res));
  requests: Recorded[] = [];
  answer: (res: ServerResponse) => void = (res) => res.end();
  baseUrl = '';

  async start(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.baseUrl = `http://127.0.0.1:${(this.server.address() as { port: number }).port}`;
  }

  reply(status: number, body: unknown, headers: Record<string, string> = {}): void {
    this.answer = (res) => {
      res.writeHead(status, { 'Content-Type': typeof body === 'string' ? 'text/html' : 'application/json', ...headers });
      res.end(typeof body === 'string' ? body : JSON.stringify(body));
    };
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString()));
    req.on('end', () => {
      this.requests.push({ method: req.method!, url: req.url!, headers: req.headers, body, clientPort: req.socket.remotePort });
      this.answer(res);
    });
  }
}

const CALLBACK = 'https://tokens.example.com/auth/atlassian/callback/';

describe('AtlassianClient', () => {
  const fake = new FakeAtlassian();
  let client: AtlassianClient;

  beforeAll(async () => {
    await fake.start();
    const config = {
      atlassian: {
        clientId: 'client-1',
        clientSecret: 'secret-1',
        callbackUrl: CALLBACK,
        authUrl: fake.baseUrl,
        apiUrl: `${fake.baseUrl}/api`,
      },
    } as unknown as AppConfig;
    client = new AtlassianClient(config, { timeoutMs: 300 });
  });
  afterAll(async () => {
    fake.server.closeAllConnections();
    await new Promise<void>((resolve) => fake.server.close(() => resolve()));
  });
  beforeEach(() => {
    fake.requests = [];
  });

  async function failure(work: Promise<unknown>): Promise<AtlassianError> {
    const error = await work.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(AtlassianError);
    return error as AtlassianError;
  }

  it('exchanges a code with the documented JSON body and the configured redirect_uri byte for byte', async () => {
    fake.reply(200, { access_token: 'at', refresh_token: 'rt', expires_in: 3600, scope: 'read:me offline_access', token_type: 'Bearer' });
    const tokens = await client.exchangeCode('the-code');
    expect(tokens).toEqual({ accessToken: 'at', refreshToken: 'rt', expiresInSeconds: 3600, scopes: ['read:me', 'offline_access'] });
    const [request] = fake.requests;
    expect(request.method).toBe('POST');
    expect(request.url).toBe('/oauth/token');
    expect(request.headers['content-type']).toBe('application/json');
    expect(JSON.parse(request.body)).toEqual({
      grant_type: 'authorization_code',
      client_id: 'client-1',
      client_secret: 'secret-1',
      code: 'the-code',
      redirect_uri: CALLBACK,
    });
  });

  it('refreshes without a redirect_uri and reports a missing refresh token as absent', async () => {
    fake.reply(200, { access_token: 'at2', expires_in: 3600, scope: 'read:me' });
    const tokens = await client.refresh('rt');
    expect(tokens.refreshToken).toBeUndefined();
    expect(JSON.parse(fake.requests[0].body)).toEqual({
      grant_type: 'refresh_token',
      client_id: 'client-1',
      client_secret: 'secret-1',
      refresh_token: 'rt',
    });
  });

  it.each([
    [403, { error: 'invalid_grant', error_description: 'Invalid authorization code' }, 'invalid_grant', true],
    [403, { error: 'unauthorized_client', error_description: 'refresh_token is invalid' }, 'unauthorized_client', true],
    [400, { error: 'invalid_request', error_description: 'authorization_code is invalid' }, 'invalid_request', false],
    [401, { error: 'access_denied', error_description: 'Unauthorized' }, 'client_unauthorized', false],
  ])('maps a %i %j from the token endpoint to %s', async (status, body, kind, revoked) => {
    fake.reply(status, body);
    const error = await failure(client.refresh('rt'));
    expect(error.kind).toBe(kind);
    expect(error.grantRevoked).toBe(revoked);
    expect(error.transient).toBe(false);
  });

  it('treats 429 as transient and reads Retry-After', async () => {
    fake.reply(429, {}, { 'Retry-After': '7' });
    const error = await failure(client.refresh('rt'));
    expect(error.kind).toBe('rate_limited');
    expect(error.transient).toBe(true);
    expect(error.details.retryAfterMs).toBe(7000);
  });

  it('treats 5xx and an HTML page as transient, never as a revoked grant', async () => {
    fake.reply(503, '<html>maintenance</html>');
    expect((await failure(client.refresh('rt'))).kind).toBe('unavailable');
    fake.reply(200, '<html>a proxy login page</html>');
    const html = await failure(client.exchangeCode('c'));
    expect(html.kind).toBe('bad_response');
    expect(html.transient).toBe(true);
  });

  it('keeps its connection to Atlassian open between calls instead of connecting for each one', async () => {
    fake.reply(200, { access_token: 'at', refresh_token: 'rt', expires_in: 3600 });
    await client.refresh('rt-1');
    await client.refresh('rt-2');
    await client.me('at').catch(() => undefined);
    expect(fake.requests).toHaveLength(3);
    expect(new Set(fake.requests.map((r) => r.clientPort)).size).toBe(1);
  });

  it('gives up after its timeout', async () => {
    fake.answer = () => undefined;
    const error = await failure(client.refresh('rt'));
    expect(error.kind).toBe('timeout');
    expect(error.transient).toBe(true);
  });

  it('reports an unreachable server as a network error', async () => {
    const config = { atlassian: { authUrl: 'http://127.0.0.1:1', clientId: 'c', clientSecret: 's' } } as unknown as AppConfig;
    const error = await failure(new AtlassianClient(config, { timeoutMs: 1000 }).refresh('rt'));
    expect(error.kind).toBe('network');
  });

  it('never puts a token or secret in an error message', async () => {
    fake.reply(403, { error: 'invalid_grant', error_description: 'Unknown or invalid refresh token.' });
    const error = await failure(client.refresh('the-refresh-token-value'));
    expect(`${error.message} ${JSON.stringify(error.details)}`).not.toMatch(/the-refresh-token-value|secret-1/);
  });

  it('reads /me and the sites with the access token as Bearer', async () => {
    fake.reply(200, { account_id: 'acc-1', name: 'Alice', email: 'a@example.com' });
    expect(await client.me('at')).toEqual({ accountId: 'acc-1', name: 'Alice', email: 'a@example.com' });
    expect(fake.requests[0].url).toBe('/api/me');
    expect(fake.requests[0].headers.authorization).toBe('Bearer at');

    fake.reply(401, { code: 401, message: 'Unauthorized; scope does not match' });
    const error = await failure(client.accessibleResources('at'));
    expect(error.kind).toBe('token_rejected');
    expect(error.message).toContain('scope does not match');
  });
});

describe('AtlassianClient.productRequest', () => {
  const fake = new FakeAtlassian();
  let client: AtlassianClient;
  beforeAll(async () => {
    await fake.start();
    client = new AtlassianClient({ atlassian: { apiUrl: `${fake.baseUrl}/api` } } as unknown as AppConfig, { timeoutMs: 300 });
  });
  afterAll(async () => {
    fake.server.closeAllConnections();
    await new Promise<void>((resolve) => fake.server.close(() => resolve()));
  });

  it('sends the method, the path under /ex/{product}/{cloudId}, the query and a JSON body, as the user', async () => {
    fake.reply(200, { webhookRegistrationResult: [{ createdWebhookId: 1000 }] });
    const answer = await client.productRequest('at', 'jira', 'cloud/1', {
      method: 'POST',
      path: '/rest/api/3/webhook',
      query: { startAt: '0', maxResults: '100' },
      body: { url: 'https://x.example/hooks', webhooks: [] },
    });
    expect(answer.status).toBe(200);
    expect(answer.json).toEqual({ webhookRegistrationResult: [{ createdWebhookId: 1000 }] });
    const [request] = fake.requests.slice(-1);
    expect([request.method, request.url]).toEqual(['POST', '/api/ex/jira/cloud%2F1/rest/api/3/webhook?startAt=0&maxResults=100']);
    expect(request.headers.authorization).toBe('Bearer at');
    expect(request.headers['content-type']).toBe('application/json');
    expect(JSON.parse(request.body)).toEqual({ url: 'https://x.example/hooks', webhooks: [] });
  });

  it('answers a refusal as it came, and productError types it', async () => {
    fake.reply(400, { errorMessages: ['Invalid JQL'] });
    const answer = await client.productRequest('at', 'jira', 'c1', {
      method: 'DELETE',
      path: '/rest/api/3/webhook',
      body: { webhookIds: [1] },
    });
    expect([answer.status, answer.json]).toEqual([400, { errorMessages: ['Invalid JQL'] }]);
    fake.reply(429, {}, { 'Retry-After': '7' });
    const limited = await client.productRequest('at', 'jira', 'c1', { method: 'GET', path: '/rest/api/3/webhook' });
    const error = productError(limited);
    expect([error.kind, error.details.retryAfterMs]).toEqual(['rate_limited', 7000]);
  });
});

describe('mergeResources', () => {
  it('merges a site listed once per product into one entry with the union of scopes', () => {
    const merged = mergeResources([
      { id: 'c1', url: 'https://a.atlassian.net', name: 'a', scopes: ['read:jira-work'], avatarUrl: 'x' },
      { id: 'c2', url: 'https://b.atlassian.net', name: 'b', scopes: ['read:confluence-content.all'] },
      { id: 'c1', url: 'https://a.atlassian.net', name: 'a', scopes: ['read:confluence-content.all', 'read:jira-work'] },
      { name: 'no id' },
    ]);
    expect(merged).toEqual([
      { id: 'c1', url: 'https://a.atlassian.net', name: 'a', scopes: ['read:confluence-content.all', 'read:jira-work'], avatarUrl: 'x' },
      { id: 'c2', url: 'https://b.atlassian.net', name: 'b', scopes: ['read:confluence-content.all'], avatarUrl: null },
    ]);
  });
});

/** A gate that refuses what `refuse` says and remembers what it was asked and told. */
class RecordingGate extends AtlassianCallGate {
  refuse: GateRefusal | undefined;
  readonly admitted: GatedCall[] = [];
  readonly recorded: { call: GatedCall; kind: string; status?: number; reason?: string | null }[] = [];

  admit(call: GatedCall): GateRefusal | undefined {
    this.admitted.push(call);
    return this.refuse;
  }

  record(call: GatedCall, outcome: CallOutcome): Promise<void> {
    this.recorded.push(
      outcome.kind === 'answered'
        ? { call, kind: outcome.kind, status: outcome.status, reason: outcome.headers.get('ratelimit-reason') }
        : { call, kind: outcome.kind },
    );
    return Promise.resolve();
  }
}

describe('AtlassianClient and its gate', () => {
  const fake = new FakeAtlassian();
  const gate = new RecordingGate();
  let client: AtlassianClient;
  beforeAll(async () => {
    await fake.start();
    client = new AtlassianClient({ atlassian: { apiUrl: `${fake.baseUrl}/api` } } as unknown as AppConfig, { timeoutMs: 300 }, gate);
  });
  afterAll(async () => {
    fake.server.closeAllConnections();
    await new Promise<void>((resolve) => fake.server.close(() => resolve()));
  });
  beforeEach(() => {
    fake.requests = [];
    gate.refuse = undefined;
    gate.admitted.length = 0;
    gate.recorded.length = 0;
  });

  it('tells the gate how a product call ended, a 429 answered as it came', async () => {
    fake.reply(429, { message: 'slow down' }, { 'Retry-After': '60', 'RateLimit-Reason': 'jira-quota-global-based' });
    const answer = await client.productRequest('at', 'jira', 'c1', { method: 'PUT', path: '/rest/api/3/issue/ABC-1', body: {} });
    expect(answer.status).toBe(429);
    expect(gate.recorded).toEqual([
      {
        call: { product: 'jira', cloudId: 'c1', method: 'PUT', path: '/rest/api/3/issue/ABC-1' },
        kind: 'answered',
        status: 429,
        reason: 'jira-quota-global-based',
      },
    ]);
    expect(productError(answer).details.reason).toBe('jira-quota-global-based');
  });

  it('throws rate_limited with the pause left and its reason, and sends nothing, when the gate refuses', async () => {
    gate.refuse = { retryAfterMs: 42_300, reason: 'jira-burst-based' };
    const error = await client.productRequest('at', 'confluence', 'c2', { method: 'GET', path: '/wiki/api/v2/pages/1' }).then(
      () => undefined,
      (e: unknown) => e as AtlassianError,
    );
    expect(error).toBeInstanceOf(AtlassianError);
    expect([error!.kind, error!.details]).toEqual([
      'rate_limited',
      { status: 429, retryAfterMs: 42_300, reason: 'jira-burst-based', paused: true },
    ]);
    expect(fake.requests).toEqual([]);
    expect(gate.recorded).toEqual([]);
  });

  it('asks about and reports the calls outside any product as platform calls', async () => {
    fake.reply(200, [{ id: 'c1', url: 'https://a.atlassian.net', name: 'a', scopes: [] }]);
    await client.accessibleResources('at');
    expect(gate.admitted).toEqual([{ product: 'platform', method: 'GET', path: '/oauth/token/accessible-resources' }]);
    gate.refuse = { retryAfterMs: 1000 };
    expect((await client.me('at').catch((e: AtlassianError) => e)) as AtlassianError).toMatchObject({
      kind: 'rate_limited',
      details: { paused: true },
    });
    expect(fake.requests).toHaveLength(1);
  });

  it('reports a call that timed out', async () => {
    fake.answer = () => undefined;
    await expect(client.productRequest('at', 'jira', 'c1', { method: 'GET', path: '/rest/api/3/myself' })).rejects.toMatchObject({
      kind: 'timeout',
    });
    expect(gate.recorded.map((r) => r.kind)).toEqual(['timeout']);
  });
});

/**
 * A port that never finishes a connection: a child process listens with a backlog of one and blocks before it can
 * accept, and the backlog is filled, so the kernel drops every further SYN.
 */
async function unansweredPort(): Promise<{ port: number; close: () => void }> {
  const listen = `require('node:net').createServer().listen({ port: 0, host: '127.0.0.1', backlog: 1 }, function () {
    process.send(this.address().port, () => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0));
  })`;
  const child = spawn(process.execPath, ['-e', listen], { stdio: ['ignore', 'ignore', 'ignore', 'ipc'] });
  const port = await new Promise<number>((resolve) => child.once('message', (message) => resolve(message as number)));
  const fillers = Array.from({ length: 4 }, () => connect(port, '127.0.0.1').on('error', () => undefined));
  await new Promise((resolve) => setTimeout(resolve, 200));
  return {
    port,
    close: () => {
      fillers.forEach((socket) => socket.destroy());
      child.kill('SIGKILL');
    },
  };
}

async function text(body: Readable): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of body) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

describe('AtlassianClient.productStream', () => {
  const fake = new FakeAtlassian();
  const gate = new RecordingGate();
  let client: AtlassianClient;
  beforeAll(async () => {
    await fake.start();
    client = new AtlassianClient({ atlassian: { apiUrl: `${fake.baseUrl}/api` } } as unknown as AppConfig, { timeoutMs: 300 }, gate);
  });
  afterAll(async () => {
    client.onApplicationShutdown();
    fake.server.closeAllConnections();
    await new Promise<void>((resolve) => fake.server.close(() => resolve()));
  });
  beforeEach(() => {
    fake.requests = [];
    gate.refuse = undefined;
    gate.recorded.length = 0;
  });

  it('sends the path and query byte for byte, the given headers, the token and the body; answers as it came', async () => {
    fake.reply(201, { id: '10001' }, { 'X-RateLimit-Remaining': '41', 'Set-Cookie': 'atl=1' });
    const answer = await client.productStream('at', 'jira', 'cloud-1', {
      method: 'POST',
      path: '/rest/api/3/issue/ABC-1/comment',
      query: 'expand=a&expand=b&jql=project%20%3D%20X&x="y"',
      headers: { Accept: 'application/json', 'Content-Type': 'application/json' },
      body: Buffer.from('{"body":"hi"}'),
    });
    expect([answer.status, answer.headers.get('x-ratelimit-remaining'), answer.headers.get('set-cookie')]).toEqual([201, '41', 'atl=1']);
    expect(await text(answer.body)).toBe('{"id":"10001"}');
    const [request] = fake.requests;
    expect([request.method, request.url]).toEqual([
      'POST',
      '/api/ex/jira/cloud-1/rest/api/3/issue/ABC-1/comment?expand=a&expand=b&jql=project%20%3D%20X&x="y"',
    ]);
    expect(request.headers).toMatchObject({
      authorization: 'Bearer at',
      accept: 'application/json',
      'content-type': 'application/json',
      'content-length': '13',
    });
    expect(request.body).toBe('{"body":"hi"}');
    expect(gate.recorded).toEqual([expect.objectContaining({ kind: 'answered', status: 201 })]);
  });

  it('decompresses an answer Atlassian compressed, and says nothing of the encoding', async () => {
    fake.answer = (res) => {
      res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Encoding': 'gzip' });
      res.end(gzipSync('{"compressed":true}'));
    };
    const answer = await client.productStream('at', 'jira', 'c1', { method: 'GET', path: '/rest/api/3/myself', query: '', headers: {} });
    expect([answer.headers.get('content-encoding'), answer.headers.get('content-length')]).toEqual([null, null]);
    expect(await text(answer.body)).toBe('{"compressed":true}');
    expect(fake.requests[0].headers['accept-encoding']).toBe('gzip, x-gzip, deflate, br');
  });

  it.each([
    '/rest/api/3/../../../oauth/token',
    '/rest/%2e%2e/%2E%2E/x',
    '/rest\\..\\..\\x',
    '/a b',
    'rest/api/3/myself',
    '/%2e%2e%2f%2e%2e%2fx/..',
  ])('refuses the path %s before anything is sent', async (path) => {
    await expect(client.productStream('at', 'jira', 'c1', { method: 'GET', path, query: '', headers: {} })).rejects.toThrow(
      'does not stay under /ex/jira/{cloudId}/',
    );
    expect(fake.requests).toEqual([]);
  });

  it('sends nothing when the gate refuses', async () => {
    gate.refuse = { retryAfterMs: 5_000, reason: 'jira-per-issue-on-write' };
    await expect(
      client.productStream('at', 'jira', 'c1', {
        method: 'PUT',
        path: '/rest/api/3/issue/A-1',
        query: '',
        headers: {},
        body: Buffer.from('{}'),
      }),
    ).rejects.toMatchObject({ kind: 'rate_limited', details: { paused: true, reason: 'jira-per-issue-on-write' } });
    expect(fake.requests).toEqual([]);
  });

  it('times out when the answer does not come', async () => {
    fake.answer = () => undefined;
    await expect(
      client.productStream('at', 'jira', 'c1', { method: 'GET', path: '/rest/api/3/myself', query: '', headers: {} }),
    ).rejects.toMatchObject({
      kind: 'timeout',
      message: 'Atlassian did not answer within 300 ms',
    });
    expect(gate.recorded.map((r) => r.kind)).toEqual(['timeout']);
  });

  it('times out when no connection can be opened, and reports a refused one as a network failure', async () => {
    const unanswered = await unansweredPort();
    try {
      const slow = new AtlassianClient({ atlassian: { apiUrl: `http://127.0.0.1:${unanswered.port}` } } as unknown as AppConfig, {
        timeoutMs: 5_000,
        connectTimeoutMs: 200,
      });
      const started = Date.now();
      await expect(slow.productStream('at', 'jira', 'c1', { method: 'GET', path: '/x', query: '', headers: {} })).rejects.toMatchObject({
        kind: 'timeout',
        message: 'no connection to Atlassian within 200 ms',
      });
      expect(Date.now() - started).toBeLessThan(2_000);
    } finally {
      unanswered.close();
    }
    const refused = new AtlassianClient({ atlassian: { apiUrl: 'http://127.0.0.1:1' } } as unknown as AppConfig, { timeoutMs: 1_000 });
    await expect(refused.productStream('at', 'jira', 'c1', { method: 'GET', path: '/x', query: '', headers: {} })).rejects.toMatchObject({
      kind: 'network',
    });
  });
});
