/**
 * Proxy benchmark: `npm run bench:proxy [-- --users 1000 --connections 32 --rounds 4 --seconds 5 --rate 200 --stream-mb 100]`.
 *
 * Starts, each in its own process: a local upstream that plays Atlassian's API (Jira's /myself as a small JSON answer
 * with rate-limit headers, and attachments of any size streamed), the real service pointed at it with N connected
 * users seeded straight into a fresh PostgreSQL database (valid tokens, one site each), and a bare NestJS app with one
 * route at the same path that forwards the call to the upstream with `fetch` (no API key, rate limit, logging,
 * metrics, database, token or governor). It drives `GET /v1/users/{userId}/proxy/jira/{cloudId}/rest/api/3/myself`
 * on the service and the bare forwarder, and the upstream's own path directly, with autocannon, taking turns (ABC
 * CBA …) so that a busy machine weighs on all three alike: first as fast as each answers (requests/s, latency, and
 * the CPU time of the process answering), then at one fixed rate for all three, below what any of them can do, each
 * request sent at its own evenly spaced moment over 32 keep-alive connections, where the latency a hop adds is what
 * it adds, not a queue. Before each recorded turn every process of the run collects its garbage, so that no turn
 * pays for another's. Then it downloads one large attachment through the service and reports the service process'
 * RSS while it streams.
 *
 * The server comes from BENCH_PG_URL (an admin URL; default postgres://postgres@127.0.0.1:5432/postgres); the
 * benchmark creates its own database there and drops it at the end.
 */
import 'reflect-metadata';
import type { ChildProcess } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { Agent, createServer, get, type IncomingMessage, type ServerResponse } from 'node:http';
import { cpus, loadavg } from 'node:os';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { performance } from 'node:perf_hooks';
import { setTimeout as delay } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { Controller, Get, Module, Param, Req, Res } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import autocannon from 'autocannon';
import type { Request, Response } from 'express';
import { createApp } from '../src/app.factory.js';
import { loadConfig } from '../src/config/app-config.js';
import {
  admin,
  collectGarbage,
  listenAndReport,
  type Measured,
  reply,
  percentile,
  scratchDatabase,
  runBenchmarkScript,
  serveAsBenchmarkChild,
  splitByStalls,
  type Stall,
  stallsSeen,
  startServer,
  startStallWatch,
  Tally,
  usage,
} from './bench-support.js';
import { TokenCipher } from '../src/crypto/token-cipher.js';
import { connectionTokenContext } from '../src/connection-store/connection-token-context.js';

const API_KEY = `bench-${randomBytes(16).toString('hex')}`;
const SEED_CHUNK = 2_000;
const WARMUP_SECONDS = 3;
const RSS_SAMPLE_MS = 10;
const MB = 1024 * 1024;
const CHUNK = Buffer.alloc(64 * 1024, 'bench attachment\n');
/** About what Jira's /rest/api/3/myself answers. */
const MYSELF = JSON.stringify({
  self: 'https://bench.atlassian.net/rest/api/3/user?accountId=712020:5b10ac8d-82e0-4f2f-9a08-e2e8c1a6f1a3',
  accountId: '712020:5b10ac8d-82e0-4f2f-9a08-e2e8c1a6f1a3',
  accountType: 'atlassian',
  emailAddress: 'bench@example.com',
  avatarUrls: { '48x48': 'https://avatar-management--avatars.us-west-2.prod.public.atl-paas.net/default.png' },
  displayName: 'Bench User',
  active: true,
  timeZone: 'Europe/Berlin',
  locale: 'en_US',
  groups: { size: 3, items: [] },
  applicationRoles: { size: 1, items: [] },
  expand: 'groups,applicationRoles',
});
const RATE_LIMIT_HEADERS = {
  'X-RateLimit-Limit': '65000',
  'X-RateLimit-Remaining': '64000',
  'X-RateLimit-Reset': '2026-03-02T10:00Z',
  'Beta-RateLimit-Policy': '"global-app-quota";q=65000;w=3600',
};

/** Child: Atlassian's API as far as the benchmark calls it. */
async function serveUpstream(): Promise<void> {
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const attachment = /\/rest\/api\/3\/attachment\/content\/(\d+)$/.exec(req.url ?? '');
    if (attachment) {
      const size = Number(attachment[1]);
      res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': String(size) });
      void pipeline(Readable.from(chunks(size)), res).catch(() => undefined);
    } else if (req.url?.endsWith('/rest/api/3/myself')) {
      res.writeHead(200, { 'Content-Type': 'application/json;charset=UTF-8', ...RATE_LIMIT_HEADERS }).end(MYSELF);
    } else {
      res.writeHead(404).end();
    }
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  process.send?.({ port: (server.address() as { port: number }).port });
}

function* chunks(size: number): Generator<Buffer> {
  for (let sent = 0; sent < size; sent += CHUNK.length) yield size - sent >= CHUNK.length ? CHUNK : CHUNK.subarray(0, size - sent);
}

@Controller('v1/users/:userId/proxy/jira/:cloudId')
class BareForwarder {
  @Get('*path')
  async forward(@Param('cloudId') cloudId: string, @Req() req: Request, @Res() res: Response): Promise<void> {
    const rest = req.originalUrl.split('/').slice(7).join('/');
    const answer = await fetch(`${process.env.UPSTREAM_URL}/ex/jira/${cloudId}/${rest}`, {
      headers: { Authorization: 'Bearer bench', Accept: 'application/json' },
    });
    res
      .status(answer.status)
      .type(answer.headers.get('content-type') ?? 'application/json')
      .send(Buffer.from(await answer.arrayBuffer()));
  }
}

@Module({ controllers: [BareForwarder] })
class BareModule {}

/** Child: the real service, the bare forwarder or the upstream; reports its port when listening, its RSS on request. */
async function serve(kind: string): Promise<void> {
  serveAsBenchmarkChild();
  let rss = { baseline: 0, peak: 0, timer: undefined as NodeJS.Timeout | undefined };
  process.on('message', (message: string) => {
    if (message === 'rss-watch') {
      rss = { baseline: process.memoryUsage().rss, peak: 0, timer: undefined };
      rss.peak = rss.baseline;
      rss.timer = setInterval(() => (rss.peak = Math.max(rss.peak, process.memoryUsage().rss)), RSS_SAMPLE_MS);
      process.send?.({ watching: true });
    } else if (message === 'rss-report') {
      clearInterval(rss.timer);
      process.send?.({ baseline: rss.baseline, peak: rss.peak });
    }
  });
  if (kind === 'upstream') return serveUpstream();
  const app =
    kind === 'bare'
      ? await NestFactory.create(BareModule, { logger: false })
      : await createApp({ config: loadConfig(process.env, { dataDir: '/nonexistent-bench-data' }) });
  await listenAndReport(app);
}

interface SeededUser {
  readonly userId: string;
  readonly cloudId: string;
}

/** Users as the connect flow leaves them, with an access token valid for the whole run and one site each; never due. */
async function seed(databaseUrl: string, env: Record<string, string>, users: number): Promise<SeededUser[]> {
  const cipher = new TokenCipher(loadConfig(env, { dataDir: '/nonexistent-bench-data' }));
  const seeded = Array.from({ length: users }, () => ({ id: randomUUID(), userId: `bench:${randomUUID()}`, cloudId: randomUUID() }));
  await admin(databaseUrl, async (client) => {
    for (let start = 0; start < users; start += SEED_CHUNK) {
      const chunk = seeded.slice(start, start + SEED_CHUNK);
      const tokens = chunk.map((user) => cipher.seal(`bench-access-token-${user.id}`, connectionTokenContext(user.id, 'access_token')));
      await client.query(
        `INSERT INTO connections (id, user_id, atlassian_account_id, status, scopes, access_token_ciphertext, access_token_key_id,
           access_token_expires_at, refresh_token_issued_at, due_at, last_refreshed_at, resources_fetched_at, created_at, updated_at)
         SELECT id, user_id, '712020:' || user_id, 'active', '{read:jira-work,offline_access,read:me}', ciphertext, key_id,
           now() + interval '50 minutes', now(), now() + interval '1 day', now(), now(), now(), now()
         FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[]) AS t(id, user_id, ciphertext, key_id)`,
        [chunk.map((u) => u.id), chunk.map((u) => u.userId), tokens.map((t) => t.ciphertext), tokens.map((t) => t.keyId)],
      );
      await client.query(
        `INSERT INTO accessible_resources (connection_id, cloud_id, url, name, scopes, first_seen_at)
         SELECT id, cloud_id, 'https://bench.atlassian.net', 'bench', '{read:jira-work}', now()
         FROM unnest($1::uuid[], $2::text[]) AS t(id, cloud_id)`,
        [chunk.map((u) => u.id), chunk.map((u) => u.cloudId)],
      );
    }
    await client.query('VACUUM ANALYZE connections, accessible_resources');
  });
  return seeded;
}

interface Target {
  readonly label: string;
  readonly url: string;
  readonly headers: Record<string, string>;
  readonly path: (user: SeededUser) => string;
  readonly child: ChildProcess;
}

interface TurnOptions {
  readonly connections: number;
  readonly seconds: number;
  /** Requests per second, sent at evenly spaced moments; as fast as the target answers when absent. */
  readonly rate?: number;
}

/** One turn of load on a target; recorded into `tally` unless it is a warm-up. */
async function turn(target: Target, tally: Tally | undefined, users: readonly SeededUser[], options: TurnOptions): Promise<void> {
  const before = await usage(target.child);
  const { seconds, failed } = await (options.rate === undefined
    ? saturate(target, tally, users, options)
    : pace(target, tally, users, { ...options, rate: options.rate }));
  if (tally) {
    tally.failed += failed;
    tally.seconds += seconds;
    tally.addUsage(before, await usage(target.child));
  }
}

/** As fast as the target answers, with autocannon: one request in flight per connection. */
async function saturate(
  target: Target,
  tally: Tally | undefined,
  users: readonly SeededUser[],
  options: TurnOptions,
): Promise<{ seconds: number; failed: number }> {
  const result = await new Promise<autocannon.Result>((resolve, reject) => {
    const instance = autocannon(
      {
        url: target.url,
        connections: options.connections,
        duration: options.seconds,
        headers: target.headers,
        requests: [
          {
            method: 'GET',
            setupRequest: (request) => ({ ...request, path: target.path(users[Math.floor(Math.random() * users.length)]) }),
          },
        ],
      },
      (error: Error | null, done: autocannon.Result) => (error ? reject(error) : resolve(done)),
    );
    if (!tally) return;
    instance.on('response', (_client: unknown, statusCode: number, _bytes: number, responseTimeMs: number) => {
      if (statusCode === 200) tally.latenciesMs.push(responseTimeMs);
      else tally.failed += 1;
    });
  });
  return { seconds: result.duration, failed: result.errors + result.timeouts };
}

/**
 * At `rate` requests a second, each sent at its own evenly spaced moment over a pool of `connections` keep-alive
 * connections, its latency counted from that moment, or from when it was sent if a timer woke a little early (so a
 * request that had to wait for a free connection or for this process counts its wait). autocannon's own rate sends each second's requests back to back at the start of the second: its latencies
 * are those of a queue of `rate` requests, not of a hop.
 */
async function pace(
  target: Target,
  tally: Tally | undefined,
  users: readonly SeededUser[],
  options: TurnOptions & { rate: number },
): Promise<{ seconds: number; failed: number }> {
  const agent = new Agent({ keepAlive: true, maxSockets: options.connections });
  const total = Math.round(options.rate * options.seconds);
  const intervalMs = 1_000 / options.rate;
  const answers: Promise<void>[] = [];
  let failed = 0;
  const started = performance.now();
  for (let sent = 0; sent < total; sent++) {
    const due = started + sent * intervalMs;
    const early = due - performance.now();
    if (early > 1) await delay(early);
    const path = target.path(users[Math.floor(Math.random() * users.length)]);
    const from = Math.min(due, performance.now());
    answers.push(
      new Promise<void>((resolve) => {
        get(`${target.url}${path}`, { agent, headers: target.headers }, (response) => {
          response.resume();
          response.on('end', () => {
            if (response.statusCode !== 200) failed += 1;
            else if (tally) {
              const latencyMs = performance.now() - from;
              tally.latenciesMs.push(latencyMs);
              tally.spans.push({ startMs: performance.timeOrigin + from, latencyMs });
            }
            resolve();
          });
        }).on('error', () => {
          failed += 1;
          resolve();
        });
      }),
    );
  }
  await Promise.all(answers);
  agent.destroy();
  return { seconds: options.seconds, failed };
}

/** Turns of each target in ABC CBA … order, so that whatever else the machine does weighs on all alike. */
async function alternate(targets: readonly Target[], users: readonly SeededUser[], rounds: number, options: TurnOptions): Promise<Tally[]> {
  const tallies = targets.map(() => new Tally());
  for (let round = 0; round < rounds; round++) {
    const order = targets.map((_, index) => index);
    for (const index of round % 2 === 0 ? order : order.reverse()) {
      await collectGarbage(targets.map((target) => target.child));
      await turn(targets[index], tallies[index], users, options);
    }
  }
  const failed = tallies.map((tally) => tally.failed);
  if (failed.some((n) => n > 0)) throw new Error(`requests failed: ${failed.join(' / ')}`);
  return tallies;
}

/**
 * The machine's stalls during the paced turns, as the idle watch process saw them, and how the requests under way in
 * one fared beside the others: what part of a p99 no server of the run is answerable for.
 */
function stallLine(stalls: readonly Stall[], targets: readonly Target[], tallies: readonly Tally[]): string {
  const longest = Math.max(0, ...stalls.map((stall) => stall.lateMs));
  const gaps = stalls.slice(1).map((stall, index) => stall.atMs - stalls[index].atMs);
  gaps.sort((a, b) => a - b);
  const medianGap = percentile(gaps, 50);
  const split = tallies.map((tally, index) => {
    const { during, others } = splitByStalls(tally.spans, stalls);
    const latencies = others.map((span) => span.latencyMs);
    latencies.sort((a, b) => a - b);
    const p99 = percentile(latencies, 99);
    return `${targets[index].label.split(':')[0]} ${during.length} (p99 of the others ${p99.toFixed(1)} ms)`;
  });
  return (
    `machine stalls during the paced turns (an idle process' 2 ms timer late by more than 5 ms): ${stalls.length}, longest ` +
    `${longest.toFixed(1)} ms, median ${Number.isNaN(medianGap) ? '-' : (medianGap / 1000).toFixed(2)} s apart; ` +
    `requests under way in one: ${split.join(', ')}`
  );
}

/** Downloads one attachment through the service, as fast as it comes, while the service process samples its RSS. */
async function streamThrough(
  service: { url: string; child: ChildProcess },
  user: SeededUser,
  size: number,
): Promise<{ baseline: number; peak: number; seconds: number }> {
  await reply(service.child, 'watching', 'rss-watch');
  const started = performance.now();
  const received = await new Promise<number>((resolve, reject) => {
    get(
      `${service.url}/v1/users/${encodeURIComponent(user.userId)}/proxy/jira/${user.cloudId}/rest/api/3/attachment/content/${size}`,
      { headers: { Authorization: `Bearer ${API_KEY}` } },
      (response) => {
        let bytes = 0;
        response.on('data', (chunk: Buffer) => (bytes += chunk.length));
        response.on('end', () => resolve(bytes));
        response.on('error', reject);
      },
    ).on('error', reject);
  });
  const seconds = (performance.now() - started) / 1000;
  if (received !== size) throw new Error(`the attachment arrived with ${received} of ${size} bytes`);
  const { baseline, peak } = await reply<{ baseline: number; peak: number }>(service.child, 'peak', 'rss-report');
  return { baseline, peak, seconds };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      users: { type: 'string', default: '1000' },
      connections: { type: 'string', default: '32' },
      rounds: { type: 'string', default: '4' },
      seconds: { type: 'string', default: '5' },
      'stream-mb': { type: 'string', default: '100' },
      rate: { type: 'string', default: '200' },
      'log-level': { type: 'string', default: 'info' },
    },
  });
  const users = Number(values.users);
  const connections = Number(values.connections);
  const rounds = Number(values.rounds);
  const seconds = Number(values.seconds);
  const streamBytes = Number(values['stream-mb']) * MB;
  const rate = Number(values.rate);

  const database = await scratchDatabase('proxy');
  const servers: ChildProcess[] = [];
  try {
    const upstream = await startServer('upstream', {});
    servers.push(upstream.child);
    const env = {
      DATABASE_URL: database.url,
      ATLASSIAN_CLIENT_ID: 'bench-client',
      ATLASSIAN_CLIENT_SECRET: 'bench-client-secret',
      ATLASSIAN_AUTH_URL: upstream.url,
      ATLASSIAN_API_URL: upstream.url,
      API_KEYS: API_KEY,
      TOKEN_ENCRYPTION_KEYS: `bench:${randomBytes(32).toString('base64')}`,
      // One key drives the whole run: its budget must not be what is measured, but it is still counted per request.
      API_RATE_LIMIT_PER_MINUTE: '1000000000',
      LOG_LEVEL: values['log-level'],
    };
    const service = await startServer('app', env);
    servers.push(service.child);
    const seeded = await seed(database.url, env, users);
    const bare = await startServer('bare', { UPSTREAM_URL: upstream.url });
    servers.push(bare.child);

    const proxied = (user: SeededUser) => `/v1/users/${encodeURIComponent(user.userId)}/proxy/jira/${user.cloudId}/rest/api/3/myself`;
    const check = await fetch(`${service.url}${proxied(seeded[0])}`, { headers: { authorization: `Bearer ${API_KEY}` } });
    if (check.status !== 200 || (await check.text()) !== MYSELF) throw new Error(`the service answered ${check.status}`);

    const targets: Target[] = [
      {
        label: 'service: GET /v1/users/{userId}/proxy/jira/{cloudId}/rest/api/3/myself',
        url: service.url,
        headers: { authorization: `Bearer ${API_KEY}` },
        path: proxied,
        child: service.child,
      },
      {
        label: 'bare NestJS route forwarding the same call with fetch',
        url: bare.url,
        headers: {},
        path: proxied,
        child: bare.child,
      },
      {
        label: 'the upstream directly',
        url: upstream.url,
        headers: {},
        path: (user) => `/ex/jira/${user.cloudId}/rest/api/3/myself`,
        child: upstream.child,
      },
    ];
    const loadBefore = loadavg()[0];
    for (const target of targets) await turn(target, undefined, seeded, { connections, seconds: WARMUP_SECONDS });
    const saturated = (await alternate(targets, seeded, rounds, { connections, seconds })).map((tally) => tally.result());
    const watch = await startStallWatch();
    servers.push(watch);
    const paced = await alternate(targets, seeded, rounds, { connections, seconds, rate });
    const stalls = await stallsSeen(watch);
    const loadAfter = loadavg()[0];
    const [app, forwarder] = saturated;
    const pacedResults = paced.map((tally) => tally.result());
    const [pacedApp, pacedForwarder, pacedDirect] = pacedResults;
    const streamed = await streamThrough(service, seeded[1], streamBytes);

    const row = (label: string, run: Measured) =>
      `| ${label} | ${run.requestsPerSecond.toFixed(0)} | ${run.p50Ms.toFixed(1)} ms | ${run.p99Ms.toFixed(1)} ms | ` +
      `${run.cpuMicrosPerRequest.toFixed(0)} µs | ${run.requests} |`;
    const pacedRow = (label: string, run: Measured) =>
      `| ${label} | ${run.p50Ms.toFixed(1)} ms | ${run.p99Ms.toFixed(1)} ms | ${run.requests} |`;
    const lines = [
      `## Proxy run: ${users.toLocaleString('en-US')} users, ${connections} connections, ${rounds} turns of ${seconds} s each, ` +
        `LOG_LEVEL=${values['log-level']}, Node ${process.version}, ${cpus().length} CPUs`,
      '',
      '| target | requests/s | p50 | p99 | CPU per request (its server process) | requests |',
      '|---|---|---|---|---|---|',
      ...targets.map((target, index) => row(target.label, saturated[index])),
      '',
      `service / bare forwarder: ${(app.requestsPerSecond / forwarder.requestsPerSecond).toFixed(2)}× the requests/s, ` +
        `${(app.cpuMicrosPerRequest / forwarder.cpuMicrosPerRequest).toFixed(2)}× the CPU per request`,
      '',
      `At ${rate} requests/s, ${connections} connections:`,
      '',
      '| target | p50 | p99 | requests |',
      '|---|---|---|---|',
      ...targets.map((target, index) => pacedRow(target.label, pacedResults[index])),
      '',
      stallLine(stalls, targets, paced),
      `added p99 over the direct call: service ${(pacedApp.p99Ms - pacedDirect.p99Ms).toFixed(1)} ms, ` +
        `bare forwarder ${(pacedForwarder.p99Ms - pacedDirect.p99Ms).toFixed(1)} ms; ` +
        `load average ${loadBefore.toFixed(1)} before, ${loadAfter.toFixed(1)} after`,
      `streaming ${streamBytes / MB} MB through the service in ${streamed.seconds.toFixed(1)} s: its RSS ${(streamed.baseline / MB).toFixed(0)} MB before, ` +
        `${(streamed.peak / MB).toFixed(0)} MB at most while streaming (+${((streamed.peak - streamed.baseline) / MB).toFixed(0)} MB)`,
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
  } finally {
    for (const child of servers) child.kill();
    await database.drop();
  }
}

runBenchmarkScript(main, serve);
