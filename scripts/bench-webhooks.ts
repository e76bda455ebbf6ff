/**
 * Jira webhook receiver benchmark: `npm run bench:webhooks [-- --users 1000 --connections 32 --rounds 4 --seconds 5]`.
 *
 * Starts, each in its own process: the real service on a fresh PostgreSQL database with N connections seeded straight
 * in SQL, each with one site and one Jira webhook registration; and a bare NestJS app with one route at the same path
 * that parses the same JSON body and answers 202 (no JWT, database, outbox, logging or metrics). It POSTs Jira-like
 * deliveries to `/atlassian/jira-webhooks` on both with autocannon, taking turns (AB BA …) so that a busy machine
 * weighs on both alike: each delivery signed HS256 with the client secret, with its own X-Atlassian-Webhook-Identifier,
 * naming a random seeded registration. Every answer must be a 202; the service's must each have written one
 * `jira.event` to the outbox, which is counted at the end.
 *
 * The server comes from BENCH_PG_URL (an admin URL; default postgres://postgres@127.0.0.1:5432/postgres); the
 * benchmark creates its own database there and drops it at the end.
 */
import 'reflect-metadata';
import type { ChildProcess } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { cpus, loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { Controller, HttpCode, Module, Post } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import autocannon from 'autocannon';
import { SignJWT } from 'jose';
import { createApp } from '../src/app.factory.js';
import { loadConfig } from '../src/config/app-config.js';
import {
  admin,
  listenAndReport,
  scratchDatabase,
  runBenchmarkScript,
  serveAsBenchmarkChild,
  startServer,
  Tally,
  usage,
} from './bench-support.js';

const CLIENT_SECRET = `bench-secret-${randomBytes(16).toString('hex')}`;
const RECEIVER_PATH = '/atlassian/jira-webhooks';
const SEED_CHUNK = 2_000;
const WARMUP_SECONDS = 3;

@Controller('atlassian/jira-webhooks')
class BareReceiver {
  @Post()
  @HttpCode(202)
  receive(): void {}
}

@Module({ controllers: [BareReceiver] })
class BareModule {}

/** Child: the real service or the bare receiver; reports its port when listening, its CPU time on request. */
async function serve(kind: string): Promise<void> {
  serveAsBenchmarkChild();
  const app =
    kind === 'bare'
      ? await NestFactory.create(BareModule, { logger: false })
      : await createApp({ config: loadConfig(process.env, { dataDir: '/nonexistent-bench-data' }) });
  await listenAndReport(app);
}

interface SeededRegistration {
  readonly siteUrl: string;
  readonly jiraWebhookId: number;
}

/** Connections with one site and one active registration each (no tokens: nothing here calls Atlassian). */
async function seed(databaseUrl: string, users: number): Promise<SeededRegistration[]> {
  const seeded = Array.from({ length: users }, (_, i) => ({
    id: randomUUID(),
    userId: `bench:${randomUUID()}`,
    cloudId: randomUUID(),
    siteUrl: `https://bench-${i}.atlassian.net`,
    jiraWebhookId: 1000 + i,
  }));
  await admin(databaseUrl, async (client) => {
    for (let start = 0; start < users; start += SEED_CHUNK) {
      const chunk = seeded.slice(start, start + SEED_CHUNK);
      const ids = chunk.map((u) => u.id);
      await client.query(
        `INSERT INTO connections (id, user_id, atlassian_account_id, status, scopes, created_at, updated_at)
         SELECT id, user_id, '712020:' || user_id, 'active', '{read:jira-work,manage:jira-webhook,offline_access,read:me}', now(), now()
         FROM unnest($1::uuid[], $2::text[]) AS t(id, user_id)`,
        [ids, chunk.map((u) => u.userId)],
      );
      await client.query(
        `INSERT INTO accessible_resources (connection_id, cloud_id, url, name, scopes, first_seen_at)
         SELECT id, cloud_id, url, 'bench', '{read:jira-work}', now() FROM unnest($1::uuid[], $2::text[], $3::text[]) AS t(id, cloud_id, url)`,
        [ids, chunk.map((u) => u.cloudId), chunk.map((u) => u.siteUrl)],
      );
      await client.query(
        `INSERT INTO jira_webhook_registrations (id, connection_id, cloud_id, jira_webhook_id, events, jql_filter, status, expires_at, created_at, updated_at)
         SELECT gen_random_uuid(), id, cloud_id, webhook_id, '{jira:issue_updated}', 'project = ABC', 'active', now() + interval '30 days', now(), now()
         FROM unnest($1::uuid[], $2::text[], $3::bigint[]) AS t(id, cloud_id, webhook_id)`,
        [ids, chunk.map((u) => u.cloudId), chunk.map((u) => u.jiraWebhookId)],
      );
    }
    await client.query('VACUUM ANALYZE connections, accessible_resources, jira_webhook_registrations');
  });
  return seeded;
}

/** About what Jira sends for an edited issue (1.5 KB). */
function delivery(registration: SeededRegistration): string {
  return JSON.stringify({
    timestamp: Date.now(),
    webhookEvent: 'jira:issue_updated',
    issue_event_type_name: 'issue_generic',
    matchedWebhookIds: [registration.jiraWebhookId],
    user: { accountId: '712020:5b10ac8d-82e0-4f2f-9a08-e2e8c1a6f1a3', displayName: 'Bench User', active: true },
    issue: {
      id: '10042',
      self: `${registration.siteUrl}/rest/api/2/issue/10042`,
      key: 'ABC-42',
      fields: {
        summary: 'Bench issue with a summary of ordinary length',
        status: { name: 'In Progress', id: '3' },
        issuetype: { name: 'Task', id: '10001' },
        project: { key: 'ABC', id: '10000', name: 'Bench project' },
        priority: { name: 'Medium', id: '3' },
        labels: ['bench', 'webhooks'],
        description: 'x'.repeat(600),
      },
    },
    changelog: { id: '10100', items: [{ field: 'summary', fieldtype: 'jira', from: null, fromString: 'Old', to: null, toString: 'New' }] },
  });
}

interface Target {
  readonly label: string;
  readonly url: string;
  readonly child: ChildProcess;
}

async function turn(
  target: Target,
  tally: Tally | undefined,
  registrations: readonly SeededRegistration[],
  jwt: string,
  options: { connections: number; seconds: number },
): Promise<void> {
  const before = await usage(target.child);
  const result = await new Promise<autocannon.Result>((resolve, reject) => {
    const instance = autocannon(
      {
        url: `${target.url}${RECEIVER_PATH}`,
        connections: options.connections,
        duration: options.seconds,
        requests: [
          {
            method: 'POST',
            setupRequest: (request) => ({
              ...request,
              headers: {
                Authorization: `Bearer ${jwt}`,
                'Content-Type': 'application/json',
                'X-Atlassian-Webhook-Identifier': randomUUID(),
              },
              body: delivery(registrations[Math.floor(Math.random() * registrations.length)]),
            }),
          },
        ],
      },
      (error: Error | null, done: autocannon.Result) => (error ? reject(error) : resolve(done)),
    );
    if (!tally) return;
    instance.on('response', (_client: unknown, statusCode: number, _bytes: number, responseTimeMs: number) => {
      if (statusCode === 202) tally.latenciesMs.push(responseTimeMs);
      else tally.failed += 1;
    });
  });
  if (tally) {
    tally.failed += result.errors + result.timeouts;
    tally.seconds += result.duration;
    tally.addUsage(before, await usage(target.child));
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      users: { type: 'string', default: '1000' },
      connections: { type: 'string', default: '32' },
      rounds: { type: 'string', default: '4' },
      seconds: { type: 'string', default: '5' },
      'log-level': { type: 'string', default: 'info' },
    },
  });
  const users = Number(values.users);
  const options = { connections: Number(values.connections), seconds: Number(values.seconds) };
  const rounds = Number(values.rounds);
  const database = await scratchDatabase('webhooks');
  const servers: ChildProcess[] = [];
  try {
    const service = await startServer('app', {
      DATABASE_URL: database.url,
      ATLASSIAN_CLIENT_ID: 'bench-client',
      ATLASSIAN_CLIENT_SECRET: CLIENT_SECRET,
      ATLASSIAN_AUTH_URL: 'http://127.0.0.1:9',
      ATLASSIAN_API_URL: 'http://127.0.0.1:9',
      API_KEYS: `bench-${randomBytes(16).toString('hex')}`,
      TOKEN_ENCRYPTION_KEYS: `bench:${randomBytes(32).toString('base64')}`,
      REFRESH_INTERVAL_SECONDS: '3600',
      LOG_LEVEL: values['log-level'],
    });
    servers.push(service.child);
    const registrations = await seed(database.url, users);
    const bare = await startServer('bare', {});
    servers.push(bare.child);
    const now = Math.floor(Date.now() / 1000);
    const jwt = await new SignJWT({ iss: 'bench-client' })
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setIssuedAt(now)
      .setExpirationTime(now + 3600)
      .sign(new TextEncoder().encode(CLIENT_SECRET));

    const targets: Target[] = [
      { label: 'service', url: service.url, child: service.child },
      { label: 'bare NestJS route', url: bare.url, child: bare.child },
    ];
    for (const target of targets) await turn(target, undefined, registrations, jwt, { ...options, seconds: WARMUP_SECONDS });
    const tallies = targets.map(() => new Tally());
    const before = await admin(database.url, (client) =>
      client.query<{ n: string }>(`SELECT count(*) AS n FROM webhook_outbox WHERE type = 'jira.event'`),
    );
    for (let round = 0; round < rounds; round++) {
      const order = round % 2 === 0 ? [0, 1] : [1, 0];
      for (const index of order) await turn(targets[index], tallies[index], registrations, jwt, options);
    }
    const failed = tallies.map((tally) => tally.failed);
    if (failed.some((n) => n > 0)) throw new Error(`deliveries not answered 202: ${failed.join(' / ')}`);
    const [ours, bareResult] = tallies.map((tally) => tally.result());
    const after = await admin(database.url, (client) =>
      client.query<{ n: string }>(`SELECT count(*) AS n FROM webhook_outbox WHERE type = 'jira.event'`),
    );
    // Deliveries still open when a turn's time is up are answered and written, but not counted by autocannon.
    const written = Number(after.rows[0].n) - Number(before.rows[0].n);

    const fixed = (n: number, digits = 1) => n.toFixed(digits);
    console.log(
      `machine: ${cpus().length} CPUs (${cpus()[0]?.model ?? 'unknown'}), load average ${loadavg()
        .map((l) => fixed(l))
        .join(' ')}, Node ${process.version}`,
    );
    console.log(`${users} registrations, ${options.connections} connections, ${rounds} turns of ${options.seconds} s each (AB BA …)`);
    for (const [index, result] of [ours, bareResult].entries()) {
      console.log(
        `${targets[index].label.padEnd(18)} ${fixed(result.requestsPerSecond, 0).padStart(6)} deliveries/s  p50 ${fixed(result.p50Ms)} ms  p99 ${fixed(result.p99Ms)} ms  CPU ${fixed(result.cpuMicrosPerRequest, 0)} µs/delivery  (${result.requests} in all)`,
      );
    }
    console.log(
      `service / bare: ${fixed(ours.requestsPerSecond / bareResult.requestsPerSecond, 2)}×; jira.event events written: ${written}`,
    );
    if (written < ours.requests) throw new Error(`${ours.requests} deliveries answered 202 but only ${written} jira.event events written`);
  } finally {
    for (const server of servers) server.kill('SIGTERM');
    await database.drop();
  }
}

runBenchmarkScript(main, serve);
