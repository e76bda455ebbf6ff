/**
 * Refresh throughput benchmark: `npm run bench:refresh [-- --connections 20000 --concurrency 64 --rounds 3 --explain]`.
 *
 * Seeds N connections that are all due on a fresh PostgreSQL database, points the real refresh service
 * (RefreshService, RefreshRepository, AtlassianClient, TokenCipher) at a minimal token endpoint running in its own
 * process, and reports refreshes per second, p50/p99 refresh latency and peak RSS, beside the same run's ceilings:
 * the token endpoint alone, and single-row UPDATEs on the same database. `--explain` also shows the claim query's
 * plan and cost with 10,000 and 1,000,000 connections.
 *
 * The server comes from BENCH_PG_URL (an admin URL; default postgres://postgres@127.0.0.1:5432/postgres); the
 * benchmark creates its own databases there and drops them at the end.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { Agent, createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { Logger } from '@nestjs/common';
import pg from 'pg';
import { Registry } from 'prom-client';
import { DataSource } from 'typeorm';
import { AtlassianClient } from '../src/atlassian/atlassian.client.js';
import { SystemClock } from '../src/common/clock.js';
import { type AppConfig, loadConfig } from '../src/config/app-config.js';
import { TokenCipher } from '../src/crypto/token-cipher.js';
import { dataSourceOptions } from '../src/database/data-source.js';
import { runMigrations } from '../src/database/migrator.js';
import { TokenEndpointOutage } from '../src/refresh/outage.js';
import { RefreshMetrics } from '../src/refresh/refresh.metrics.js';
import { REFRESH_POLICY } from '../src/refresh/refresh.policy.js';
import { CLAIM_DUE_SQL, RefreshRepository } from '../src/refresh/refresh.repository.js';
import { RefreshService } from '../src/refresh/refresh.service.js';
import { MathRandomSource, TimerSleeper } from '../src/refresh/timing.js';
import { OutboxRepository } from '../src/webhooks/outbox.repository.js';

const SERVE_FLAG = '--serve-token-endpoint';
const SEED_CHUNK = 2_000;
const EXPLAIN_SIZES = [10_000, 1_000_000];
const EXPLAIN_RUNS = 25;
const CLAIM_BATCH = 64;

/** The token endpoint: any refresh gets a fresh pair, as fast as node:http can answer. */
function serveTokenEndpoint(): void {
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      const body = JSON.stringify({
        access_token: `at_${randomBytes(24).toString('base64url')}`,
        refresh_token: `rt_${randomBytes(24).toString('base64url')}`,
        expires_in: 3600,
        scope: 'read:jira-work offline_access read:me',
        token_type: 'Bearer',
      });
      res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) }).end(body);
    });
  });
  server.keepAliveTimeout = 60_000;
  server.listen(0, '127.0.0.1', () => process.send?.({ port: (server.address() as AddressInfo).port }));
}

async function startTokenEndpoint(): Promise<{ url: string; child: ChildProcess }> {
  const child = fork(process.argv[1], [SERVE_FLAG], { stdio: 'inherit' });
  const port = await new Promise<number>((resolve, reject) => {
    child.once('message', (message: { port: number }) => resolve(message.port));
    child.once('exit', (code) => reject(new Error(`token endpoint exited with ${code}`)));
  });
  return { url: `http://127.0.0.1:${port}`, child };
}

interface BenchDatabase {
  readonly url: string;
  drop(): Promise<void>;
}

async function createDatabase(adminUrl: string, label: string): Promise<BenchDatabase> {
  const name = `ats_bench_${label}_${randomBytes(3).toString('hex')}`;
  const admin = async (sql: string) => {
    const client = new pg.Client({ connectionString: adminUrl });
    await client.connect();
    try {
      await client.query(sql);
    } finally {
      await client.end();
    }
  };
  await admin(`CREATE DATABASE "${name}"`);
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return { url: url.toString(), drop: () => admin(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`) };
}

function benchConfig(databaseUrl: string, tokenEndpointUrl: string, concurrency: number): AppConfig {
  return loadConfig(
    {
      DATABASE_URL: databaseUrl,
      TOKEN_ENCRYPTION_KEYS: `bench:${randomBytes(32).toString('base64')}`,
      ATLASSIAN_CLIENT_ID: 'bench-client',
      ATLASSIAN_CLIENT_SECRET: 'bench-secret',
      ATLASSIAN_AUTH_URL: tokenEndpointUrl,
      ATLASSIAN_API_URL: tokenEndpointUrl,
      REFRESH_CONCURRENCY: String(concurrency),
      LOG_LEVEL: 'silent',
    },
    { dataDir: '/nonexistent-bench-data' },
  );
}

/** N connections, sealed like the connect flow seals them, every one due now. */
async function seed(dataSource: DataSource, cipher: TokenCipher, count: number): Promise<string[]> {
  const ids: string[] = [];
  const now = new Date();
  for (let start = 0; start < count; start += SEED_CHUNK) {
    const columns: unknown[][] = Array.from({ length: 7 }, () => []);
    for (let i = start; i < Math.min(count, start + SEED_CHUNK); i++) {
      const id = randomUUID();
      ids.push(id);
      const access = cipher.seal(`at_seed_${i}`, { table: 'connections', rowId: id, column: 'access_token' });
      const refresh = cipher.seal(`rt_seed_${i}`, { table: 'connections', rowId: id, column: 'refresh_token' });
      [
        id,
        `bench-user-${i}`,
        access.ciphertext,
        refresh.ciphertext,
        access.keyId,
        new Date(now.getTime() + 60_000),
        new Date(now.getTime() - (i % 600) * 1000),
      ].forEach((value, index) => columns[index].push(value));
    }
    await dataSource.query(
      `INSERT INTO connections (id, user_id, atlassian_account_id, status, access_token_ciphertext, access_token_key_id,
         refresh_token_ciphertext, refresh_token_key_id, access_token_expires_at, refresh_token_issued_at, due_at)
       SELECT id, user_id, 'bench:' || user_id, 'active', access, key_id, refresh, key_id, expires, now(), due
       FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::timestamptz[], $7::timestamptz[])
         AS t(id, user_id, access, refresh, key_id, expires, due)`,
      columns,
    );
  }
  await dataSource.query('VACUUM ANALYZE connections');
  return ids;
}

/** Keeps the service's own measurements of each refresh, for percentiles the histogram's buckets cannot give. */
class SamplingMetrics extends RefreshMetrics {
  readonly samples: number[] = [];

  override recordRefresh(outcome: string, seconds: number): void {
    super.recordRefresh(outcome, seconds);
    this.samples.push(seconds);
  }
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

/** Runs `total` jobs with `concurrency` at a time; returns jobs per second. */
async function rate(total: number, concurrency: number, job: (index: number) => Promise<unknown>): Promise<number> {
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < total) await job(next++);
    }),
  );
  return total / ((performance.now() - started) / 1000);
}

interface RefreshRun {
  readonly refreshed: number;
  readonly seconds: number;
  readonly perSecond: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly peakRssMb: number;
  readonly other: Record<string, number>;
}

async function runRefresh(dataSource: DataSource, config: AppConfig, cipher: TokenCipher, client: AtlassianClient): Promise<RefreshRun> {
  const clock = new SystemClock();
  const repository = new RefreshRepository(dataSource, new OutboxRepository());
  const registry = new Registry();
  const metrics = new SamplingMetrics(registry, repository, clock, config);
  const outage = new TokenEndpointOutage(registry);
  const service = new RefreshService(
    repository,
    client,
    cipher,
    config,
    clock,
    metrics,
    new MathRandomSource(),
    new TimerSleeper(),
    outage,
  );
  const started = performance.now();
  const report = await service.runDueRefreshes();
  const seconds = (performance.now() - started) / 1000;
  const { refreshed, claimed, durationMs: _, skipped: __, ...other } = report;
  return {
    refreshed,
    seconds,
    perSecond: refreshed / seconds,
    p50Ms: percentile(metrics.samples, 50) * 1000,
    p99Ms: percentile(metrics.samples, 99) * 1000,
    peakRssMb: process.resourceUsage().maxRSS / 1024,
    other: { claimed, ...other },
  };
}

/** The token endpoint alone, over keep-alive node:http: a lighter client than AtlassianClient's fetch. */
async function tokenEndpointCeiling(url: string, total: number, concurrency: number): Promise<number> {
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
  const body = JSON.stringify({
    grant_type: 'refresh_token',
    client_id: 'bench-client',
    client_secret: 'bench-secret',
    refresh_token: 'rt',
  });
  return rate(
    total,
    concurrency,
    () =>
      new Promise<void>((resolve, reject) => {
        const call = request(
          `${url}/oauth/token`,
          { method: 'POST', agent, headers: { 'Content-Type': 'application/json' } },
          (response) => {
            response.resume();
            response.on('end', resolve);
          },
        );
        call.on('error', reject);
        call.end(body);
      }),
  );
}

async function updateCeiling(dataSource: DataSource, ids: string[], concurrency: number): Promise<number> {
  const value = 'x'.repeat(120);
  return rate(ids.length, concurrency, (i) =>
    dataSource.query(`UPDATE connections SET access_token_ciphertext = $2, version = version + 1 WHERE id = $1`, [ids[i], value]),
  );
}

/** The claim's plan and cost at one table size: ~1% of the rows due, the rest spread over the next hour. */
async function explainClaim(adminUrl: string, size: number): Promise<string> {
  const database = await createDatabase(adminUrl, `explain_${size}`);
  const client = new pg.Client({ connectionString: database.url });
  const dataSource = await new DataSource(
    dataSourceOptions({ database: { url: database.url, pgliteDir: '', migrationsRun: false } }),
  ).initialize();
  try {
    await runMigrations(dataSource);
    await dataSource.destroy();
    await client.connect();
    const now = new Date();
    const seedStarted = performance.now();
    await client.query(
      `INSERT INTO connections (user_id, atlassian_account_id, status, access_token_ciphertext, access_token_key_id,
         refresh_token_ciphertext, refresh_token_key_id, access_token_expires_at, refresh_token_issued_at, due_at)
       SELECT 'bench-' || g, 'bench:' || g, CASE WHEN g % 50 = 0 THEN 'reauth_required' ELSE 'active' END,
         repeat('a', 120), 'bench', repeat('r', 120), 'bench',
         $1::timestamptz + (g % 3600) * interval '1 second' + interval '564 seconds', $1,
         CASE WHEN g % 50 = 0 THEN NULL ELSE $1::timestamptz + (g % 3600) * interval '1 second' - interval '36 seconds' END
       FROM generate_series(1, $2::int) g`,
      [now, size],
    );
    await client.query('VACUUM ANALYZE connections');
    const seedSeconds = (performance.now() - seedStarted) / 1000;
    const params = [now, 'bench-explain', new Date(now.getTime() + REFRESH_POLICY.leaseMs), now, CLAIM_BATCH];
    let plan = '';
    const executionMs: number[] = [];
    const roundTripMs: number[] = [];
    for (let run = 0; run < EXPLAIN_RUNS; run++) {
      await client.query('BEGIN');
      const { rows } = await client.query(`EXPLAIN (ANALYZE, BUFFERS, COSTS OFF, TIMING OFF) ${CLAIM_DUE_SQL}`, params);
      await client.query('ROLLBACK');
      plan = rows.map((r: { 'QUERY PLAN': string }) => r['QUERY PLAN']).join('\n');
      executionMs.push(Number(/Execution Time: ([\d.]+) ms/.exec(plan)?.[1]));
      await client.query('BEGIN');
      const started = performance.now();
      const claimed = await client.query(CLAIM_DUE_SQL, params);
      roundTripMs.push(performance.now() - started);
      await client.query('ROLLBACK');
      if (claimed.rowCount !== CLAIM_BATCH) throw new Error(`claimed ${claimed.rowCount}, expected ${CLAIM_BATCH}`);
    }
    const [{ due }] = (await client.query(`SELECT count(*)::int AS due FROM connections WHERE due_at <= $1`, [now])).rows as {
      due: number;
    }[];
    return [
      `### ${size.toLocaleString('en-US')} connections (${due.toLocaleString('en-US')} due; seeded in ${seedSeconds.toFixed(1)} s)`,
      '',
      `claim of ${CLAIM_BATCH}: execution median ${percentile(executionMs, 50).toFixed(3)} ms (p90 ${percentile(executionMs, 90).toFixed(3)} ms), ` +
        `client round trip median ${percentile(roundTripMs, 50).toFixed(3)} ms, over ${EXPLAIN_RUNS} runs`,
      '',
      '```',
      plan,
      '```',
    ].join('\n');
  } finally {
    await client.end().catch(() => undefined);
    if (dataSource.isInitialized) await dataSource.destroy();
    await database.drop();
  }
}

async function main(): Promise<void> {
  if (process.argv.includes(SERVE_FLAG)) {
    serveTokenEndpoint();
    return;
  }
  const { values } = parseArgs({
    options: {
      connections: { type: 'string', default: '20000' },
      concurrency: { type: 'string', default: '64' },
      rounds: { type: 'string', default: '3' },
      explain: { type: 'boolean', default: false },
    },
  });
  const connections = Number(values.connections);
  const concurrency = Number(values.concurrency);
  const rounds = Number(values.rounds);
  const adminUrl = process.env.BENCH_PG_URL || 'postgres://postgres@127.0.0.1:5432/postgres';
  Logger.overrideLogger(['error']);

  const endpoint = await startTokenEndpoint();
  const database = await createDatabase(adminUrl, 'refresh');
  const config = benchConfig(database.url, endpoint.url, concurrency);
  const dataSource = await new DataSource(dataSourceOptions(config)).initialize();
  try {
    await runMigrations(dataSource);
    const cipher = new TokenCipher(config);
    const ids = await seed(dataSource, cipher, connections);

    const runs: RefreshRun[] = [];
    for (let round = 0; round < rounds; round++) {
      if (round > 0) {
        await dataSource.query(`UPDATE connections SET due_at = now() - interval '1 second'`);
        await dataSource.query('VACUUM ANALYZE connections');
      }
      runs.push(await runRefresh(dataSource, config, cipher, new AtlassianClient(config)));
    }
    const [{ version }] = (await dataSource.query(`SELECT min(version) AS version FROM connections`)) as { version: number }[];
    if (runs.some((run) => run.refreshed !== connections) || version < rounds + 1) {
      throw new Error(`not every connection was refreshed (${runs.map((run) => run.refreshed).join(', ')} of ${connections})`);
    }
    const endpointRate = await tokenEndpointCeiling(endpoint.url, connections, concurrency);
    const updateRate = await updateCeiling(dataSource, ids, concurrency);

    const row = (name: string, run: RefreshRun) =>
      `| ${name} | ${run.perSecond.toFixed(0)} (${run.refreshed} in ${run.seconds.toFixed(2)} s) | ${run.p50Ms.toFixed(1)} ms | ${run.p99Ms.toFixed(1)} ms |`;
    const lines = [
      `## Refresh run: ${connections.toLocaleString('en-US')} due connections, REFRESH_CONCURRENCY=${concurrency}, Node ${process.version}`,
      '',
      '| refresh service, one cycle over every row | refreshes/s | p50 (claim to stored) | p99 |',
      '|---|---|---|---|',
      ...runs.map((run, i) => row(`round ${i + 1}`, run)),
      '',
      '| same run | value |',
      '|---|---|',
      `| peak RSS of the benchmark process (seeding and all rounds) | ${Math.max(...runs.map((run) => run.peakRssMb)).toFixed(0)} MB |`,
      `| outcomes other than refreshed, all rounds | ${JSON.stringify(runs.map((run) => run.other))} |`,
      `| ceiling: token endpoint alone over keep-alive node:http (${concurrency} concurrent) | ${endpointRate.toFixed(0)} requests/s |`,
      `| ceiling: single-row UPDATEs on the same database (${concurrency} concurrent, pool of 20) | ${updateRate.toFixed(0)} updates/s |`,
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
  } finally {
    await dataSource.destroy();
    await database.drop();
    endpoint.child.kill();
  }

  if (values.explain) {
    for (const size of EXPLAIN_SIZES) process.stdout.write(`\n${await explainClaim(adminUrl, size)}\n`);
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`Benchmark failed: ${(error as Error).stack ?? String(error)}\n`);
  process.exit(1);
});
