/**
 * API read benchmark: `npm run bench:api [-- --users 10000 --connections 32 --rounds 6 --seconds 5 --log-level info]`.
 *
 * Seeds N connected users (random ids, 3 sites each) straight into a fresh PostgreSQL database, starts the real
 * service on it in a child process, and drives `GET /v1/users/{userId}/accessible-resources` with autocannon (a random
 * seeded user per request, a valid API key). In the same run it drives a bare NestJS route in another child process
 * that answers the same JSON with no API key, rate limit, logging, metrics or database: the ceiling of Nest on Express
 * on this machine. The two take turns, so a busy machine weighs on both alike. Reports requests/s, p50 and p99
 * latency and each server process' CPU time and read/write system calls per request, for both, and their ratios.
 *
 * The server comes from BENCH_PG_URL (an admin URL; default postgres://postgres@127.0.0.1:5432/postgres); the
 * benchmark creates its own database there and drops it at the end.
 */
import 'reflect-metadata';
import type { ChildProcess } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { cpus, loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { Controller, Get, Module, Param } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import autocannon from 'autocannon';
import { createApp } from '../src/app.factory.js';
import { loadConfig } from '../src/config/app-config.js';
import {
  admin,
  listenAndReport,
  type Measured,
  scratchDatabase,
  runBenchmarkScript,
  serveAsBenchmarkChild,
  startServer,
  Tally,
  usage,
} from './bench-support.js';

const API_KEY = `bench-${randomBytes(16).toString('hex')}`;
const SITES_PER_USER = 3;
const SEED_CHUNK = 2_000;
const WARMUP_SECONDS = 3;

/** The JSON a seeded user's accessible-resources answers, so both servers send the same bytes. */
function sitesOf(index: number): { id: string; url: string; name: string; scopes: string[]; avatarUrl: string }[] {
  return Array.from({ length: SITES_PER_USER }, (_, site) => ({
    id: `00000000-0000-4000-a000-${String(index * SITES_PER_USER + site).padStart(12, '0')}`,
    url: `https://bench-site-${site + 1}.atlassian.net`,
    name: `bench-site-${site + 1}`,
    scopes: ['read:jira-work', 'read:jira-user'],
    avatarUrl: 'https://site-admin-avatar-cdn.prod.public.atl-paas.net/avatars/240/rocket.png',
  }));
}

@Controller('v1/users/:userId/accessible-resources')
class BareController {
  private readonly fetchedAt = new Date().toISOString();

  @Get()
  read(@Param('userId') userId: string): unknown {
    return { userId, resources: sitesOf(0), fetchedAt: this.fetchedAt };
  }
}

@Module({ controllers: [BareController] })
class BareModule {}

/** Child process: the real service on the benchmark database, or the bare Nest app; reports its port when listening. */
async function serve(kind: string): Promise<void> {
  serveAsBenchmarkChild();
  const app =
    kind === 'bare'
      ? await NestFactory.create(BareModule, { logger: false })
      : await createApp({ config: loadConfig(process.env, { dataDir: '/nonexistent-bench-data' }) });
  await listenAndReport(app);
}

/**
 * Users as the connect flow leaves them, without tokens and never due, so the refresh job leaves them alone during
 * the run: this benchmark is about the read path only.
 */
async function seed(databaseUrl: string, users: number): Promise<string[]> {
  const userIds = Array.from({ length: users }, () => `bench:${randomUUID()}`);
  await admin(databaseUrl, async (client) => {
    for (let start = 0; start < users; start += SEED_CHUNK) {
      const chunk = userIds.slice(start, start + SEED_CHUNK);
      const ids = chunk.map(() => randomUUID());
      await client.query(
        `INSERT INTO connections (id, user_id, atlassian_account_id, status, scopes, last_refreshed_at, resources_fetched_at)
         SELECT id, user_id, '712020:' || user_id, 'active', '{read:jira-work,offline_access,read:me}', now(), now()
         FROM unnest($1::uuid[], $2::text[]) AS t(id, user_id)`,
        [ids, chunk],
      );
      const sites = chunk.flatMap((_, offset) => sitesOf(start + offset).map((site) => ({ connection: ids[offset], ...site })));
      await client.query(
        `INSERT INTO accessible_resources (connection_id, cloud_id, url, name, scopes, avatar_url, first_seen_at)
         SELECT s.connection, s.id, s.url, s.name, ARRAY(SELECT jsonb_array_elements_text(s.scopes)), s."avatarUrl", now()
         FROM jsonb_to_recordset($1::jsonb) AS s(connection uuid, id text, url text, name text, scopes jsonb, "avatarUrl" text)`,
        [JSON.stringify(sites)],
      );
    }
    await client.query('VACUUM ANALYZE connections, accessible_resources');
  });
  return userIds;
}

interface Target {
  readonly url: string;
  readonly child: ChildProcess;
  readonly headers: Record<string, string>;
  readonly tally: Tally;
}

async function round(target: Target, userIds: readonly string[], connections: number, seconds: number, record: boolean): Promise<void> {
  const options: autocannon.Options = {
    url: target.url,
    connections,
    duration: seconds,
    headers: target.headers,
    requests: [
      {
        method: 'GET',
        setupRequest: (request) => ({
          ...request,
          path: `/v1/users/${encodeURIComponent(userIds[Math.floor(Math.random() * userIds.length)])}/accessible-resources`,
        }),
      },
    ],
  };
  const before = record ? await usage(target.child) : undefined;
  const result = await new Promise<autocannon.Result>((resolve, reject) => {
    const instance = autocannon(options, (error: Error | null, done: autocannon.Result) => (error ? reject(error) : resolve(done)));
    if (!record) return;
    instance.on('response', (_client: unknown, statusCode: number, _bytes: number, responseTimeMs: number) => {
      if (statusCode === 200) target.tally.latenciesMs.push(responseTimeMs);
      else target.tally.failed += 1;
    });
  });
  if (before) {
    target.tally.addUsage(before, await usage(target.child));
    target.tally.failed += result.errors + result.timeouts;
    target.tally.seconds += result.duration;
  }
}

/**
 * The two servers take turns (ABBA…), a few seconds each, so that whatever else the machine is doing weighs on
 * both alike; a first turn each warms them up unrecorded.
 */
async function compare(
  first: Target,
  second: Target,
  userIds: readonly string[],
  connections: number,
  rounds: number,
  seconds: number,
): Promise<void> {
  await round(first, userIds, connections, WARMUP_SECONDS, false);
  await round(second, userIds, connections, WARMUP_SECONDS, false);
  for (let turn = 0; turn < rounds; turn++) {
    const order = turn % 2 === 0 ? [first, second] : [second, first];
    for (const target of order) await round(target, userIds, connections, seconds, true);
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      users: { type: 'string', default: '10000' },
      connections: { type: 'string', default: '32' },
      rounds: { type: 'string', default: '6' },
      seconds: { type: 'string', default: '5' },
      'log-level': { type: 'string', default: 'info' },
    },
  });
  const users = Number(values.users);
  const connections = Number(values.connections);
  const rounds = Number(values.rounds);
  const seconds = Number(values.seconds);
  const database = await scratchDatabase('api');
  const servers: ChildProcess[] = [];
  try {
    const app = await startServer('app', {
      DATABASE_URL: database.url,
      API_KEYS: API_KEY,
      TOKEN_ENCRYPTION_KEYS: `bench:${randomBytes(32).toString('base64')}`,
      // One key drives the whole run: its budget must not be what is measured, but it is still counted per request.
      API_RATE_LIMIT_PER_MINUTE: '1000000000',
      LOG_LEVEL: values['log-level'],
    });
    servers.push(app.child);
    const userIds = await seed(database.url, users);
    const bare = await startServer('bare', {});
    servers.push(bare.child);

    const check = await fetch(`${app.url}/v1/users/${encodeURIComponent(userIds[0])}/accessible-resources`, {
      headers: { authorization: `Bearer ${API_KEY}` },
    });
    const body = (await check.json()) as { resources?: unknown[] };
    if (check.status !== 200 || body.resources?.length !== SITES_PER_USER) throw new Error(`the service answered ${check.status}`);

    const service: Target = { url: app.url, child: app.child, headers: { authorization: `Bearer ${API_KEY}` }, tally: new Tally() };
    const ceiling: Target = { url: bare.url, child: bare.child, headers: {}, tally: new Tally() };
    const loadBefore = loadavg()[0];
    await compare(ceiling, service, userIds, connections, rounds, seconds);
    const loadAfter = loadavg()[0];
    const appRun = service.tally.result();
    const bareRun = ceiling.tally.result();
    if (appRun.failed + bareRun.failed > 0) throw new Error(`requests failed: service ${appRun.failed}, bare ${bareRun.failed}`);
    const row = (label: string, run: Measured) =>
      `| ${label} | ${run.requestsPerSecond.toFixed(0)} | ${run.p50Ms.toFixed(1)} ms | ${run.p99Ms.toFixed(1)} ms | ` +
      `${run.cpuMicrosPerRequest.toFixed(0)} µs | ${run.syscallsPerRequest.toFixed(2)} | ${run.requests} |`;
    const lines = [
      `## API read run: ${users.toLocaleString('en-US')} users × ${SITES_PER_USER} sites, ${connections} connections, ` +
        `${rounds} turns of ${seconds} s each, LOG_LEVEL=${values['log-level']}, Node ${process.version}, ${cpus().length} CPUs`,
      '',
      '| server | requests/s | p50 | p99 | server CPU per request | server read/write system calls per request | requests |',
      '|---|---|---|---|---|---|---|',
      row('service: GET /v1/users/{userId}/accessible-resources', appRun),
      row('bare NestJS route, same JSON, no key/limit/logs/metrics/database', bareRun),
      '',
      `service / bare: ${((appRun.requestsPerSecond / bareRun.requestsPerSecond) * 100).toFixed(0)} % of the requests/s; ` +
        `load average ${loadBefore.toFixed(1)} before, ${loadAfter.toFixed(1)} after; ` +
        `server CPU per request: service ${(appRun.cpuMicrosPerRequest / bareRun.cpuMicrosPerRequest).toFixed(2)}× the bare route's`,
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
  } finally {
    for (const child of servers) child.kill();
    await database.drop();
  }
}

runBenchmarkScript(main, serve);
