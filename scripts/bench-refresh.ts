/**
 * Refresh throughput benchmark: `npm run bench:refresh [-- --connections 20000 --concurrency 64 --rounds 3 --explain]`.
 *
 * Seeds N connections that are all due on a fresh PostgreSQL database, points the real refresh service
 * (RefreshService, ConnectionsRepository, AtlassianClient, TokenCipher) at a minimal token endpoint running in its own
 * process, and reports refreshes per second, p50/p99 refresh latency and peak RSS, beside the same run's ceilings:
 * the token endpoint alone, and single-row UPDATEs on the same database. `--explain` also shows the claim query's
 * plan and cost with 10,000 and 1,000,000 connections. The database's own ceiling for this kind of write is measured by
 * pgbench in the same run (single-row UPDATEs of a ~1.2 KB row, 8 clients, 20 s), and the refresh rate is given as a
 * ratio of it.
 *
 * `--soak-minutes 10 [--soak-connections 1000000]` instead runs the built service (`dist/src/main.js`) for that long on
 * that many connections (1 % due at the start, the rest falling due over the next hour, as `--explain` seeds them) and
 * reports its RSS as it refreshes, and the claim's cost on the full table at the end.
 *
 * The server comes from BENCH_PG_URL (an admin URL; default postgres://postgres@127.0.0.1:5432/postgres); the
 * benchmark creates its own databases there and drops them at the end.
 */
import { type ChildProcess, execFileSync, fork } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, createServer, request } from 'node:http';
import { type AddressInfo, createServer as createNetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { Logger } from '@nestjs/common';
import pg from 'pg';
import { Registry } from 'prom-client';
import { DataSource } from 'typeorm';
import { AtlassianClient } from '../src/atlassian/atlassian.client.js';
import { SystemClock } from '../src/common/clock.js';
import { type AppConfig, loadConfig } from '../src/config/app-config.js';
import { ConnectionCache } from '../src/connection-store/connection-cache.js';
import { connectionTokenContext } from '../src/connection-store/connection-token-context.js';
import { TokenCipher } from '../src/crypto/token-cipher.js';
import { dataSourceOptions } from '../src/database/data-source.js';
import { runMigrations } from '../src/database/migrator.js';
import { TokenEndpointOutage } from '../src/refresh/outage.js';
import { RefreshMetrics } from '../src/refresh/refresh.metrics.js';
import { REFRESH_POLICY } from '../src/refresh/refresh.policy.js';
import { CLAIM_DUE_SQL, ConnectionsRepository } from '../src/connection-store/connections.repository.js';
import { RefreshService } from '../src/refresh/refresh.service.js';
import { MathRandomSource, TimerSleeper } from '../src/refresh/timing.js';
import { OutboxRepository } from '../src/webhooks/outbox.repository.js';

const SERVE_FLAG = '--serve-token-endpoint';
const SEED_CHUNK = 2_000;
const EXPLAIN_SIZES = [10_000, 1_000_000];
const EXPLAIN_RUNS = 25;
const CLAIM_BATCH = 64;
/** pgbench's run: single-row UPDATEs of a ~1.2 KB row (the size of a connection row), 8 clients, 20 s. */
const PGBENCH = { rows: 20_000, clients: 8, seconds: 20 };
const SOAK_SAMPLE_MS = 30_000;

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
async function seed(
  dataSource: DataSource,
  cipher: TokenCipher,
  count: number,
  layout: (index: number) => { due: Date; reauth: boolean } = () => ({ due: new Date(), reauth: false }),
): Promise<string[]> {
  const ids: string[] = [];
  const now = new Date();
  for (let start = 0; start < count; start += SEED_CHUNK) {
    const columns: unknown[][] = Array.from({ length: 8 }, () => []);
    for (let i = start; i < Math.min(count, start + SEED_CHUNK); i++) {
      const id = randomUUID();
      ids.push(id);
      const { due, reauth } = layout(i);
      const access = cipher.seal(`at_seed_${i}`, connectionTokenContext(id, 'access_token'));
      const refresh = cipher.seal(`rt_seed_${i}`, connectionTokenContext(id, 'refresh_token'));
      [
        id,
        `bench-user-${i}`,
        access.ciphertext,
        refresh.ciphertext,
        access.keyId,
        new Date(now.getTime() + 60_000),
        due > now ? due : new Date(due.getTime() - (i % 600) * 1000),
        reauth ? 'reauth_required' : 'active',
      ].forEach((value, index) => columns[index].push(value));
    }
    await dataSource.query(
      `INSERT INTO connections (id, user_id, atlassian_account_id, status, access_token_ciphertext, access_token_key_id,
         refresh_token_ciphertext, refresh_token_key_id, access_token_expires_at, refresh_token_issued_at, due_at)
       SELECT id, user_id, 'bench:' || user_id, status, access, key_id, refresh, key_id, expires, now(),
         CASE WHEN status = 'reauth_required' THEN NULL ELSE due END
       FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::timestamptz[], $7::timestamptz[], $8::text[])
         AS t(id, user_id, access, refresh, key_id, expires, due, status)`,
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
  // Nothing here reads the cache, so it never listens: the refresh writes only make it forget.
  const repository = new ConnectionsRepository(dataSource, new OutboxRepository(), new ConnectionCache(config, clock, dataSource));
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

function pgbenchBinary(): string {
  if (process.env.PGBENCH) return process.env.PGBENCH;
  const onPath = execFileSync('sh', ['-c', 'command -v pgbench || true'], { encoding: 'utf8' }).trim();
  if (onPath) return onPath;
  const versions = existsSync('/usr/lib/postgresql') ? readdirSync('/usr/lib/postgresql').sort((a, b) => Number(b) - Number(a)) : [];
  const found = versions.map((v) => `/usr/lib/postgresql/${v}/bin/pgbench`).find((path) => existsSync(path));
  if (!found) throw new Error('pgbench not found (set PGBENCH, or install PostgreSQL, which ships it)');
  return found;
}

/**
 * The database's own ceiling for single-row UPDATEs of a row the size of a connection (~1.2 KB), measured by pgbench
 * itself: the node pool's ceiling above includes node-postgres' cost, and so flatters a ratio against it.
 */
async function pgbenchCeiling(dataSource: DataSource, databaseUrl: string): Promise<number> {
  const work = mkdtempSync(join(tmpdir(), 'ats-pgbench-'));
  try {
    await dataSource.query(`CREATE TABLE bench_pgbench (id int PRIMARY KEY, n int NOT NULL, payload text NOT NULL)`);
    await dataSource.query(`INSERT INTO bench_pgbench SELECT g, 0, repeat(md5(g::text), 38) FROM generate_series(1, $1::int) g`, [
      PGBENCH.rows,
    ]);
    await dataSource.query('VACUUM ANALYZE bench_pgbench');
    const script = join(work, 'update.sql');
    writeFileSync(script, `\\set id random(1, ${PGBENCH.rows})\nUPDATE bench_pgbench SET n = n + 1 WHERE id = :id;\n`);
    const output = execFileSync(
      pgbenchBinary(),
      ['-n', '-c', String(PGBENCH.clients), '-j', '2', '-T', String(PGBENCH.seconds), '-f', script, databaseUrl],
      { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const tps = /tps = ([\d.]+) \((?:without initial connection time|excluding connections establishing)\)/.exec(output);
    if (!tps) throw new Error(`pgbench printed no tps:\n${output}`);
    return Number(tps[1]);
  } finally {
    await dataSource.query('DROP TABLE IF EXISTS bench_pgbench');
    rmSync(work, { recursive: true, force: true });
  }
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
    const [{ due }] = (await client.query(`SELECT count(*)::int AS due FROM connections WHERE due_at <= $1`, [now])).rows as {
      due: number;
    }[];
    return [
      `### ${size.toLocaleString('en-US')} connections (${due.toLocaleString('en-US')} due; seeded in ${seedSeconds.toFixed(1)} s)`,
      '',
      await claimCost(client, now),
    ].join('\n');
  } finally {
    await client.end().catch(() => undefined);
    if (dataSource.isInitialized) await dataSource.destroy();
    await database.drop();
  }
}

/** The daemon's claim (CLAIM_DUE_SQL, 64 rows) run 25 times under EXPLAIN and 25 times for real, each rolled back. */
async function claimCost(client: pg.Client, now: Date): Promise<string> {
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
  return [
    `claim of ${CLAIM_BATCH}: execution median ${percentile(executionMs, 50).toFixed(3)} ms (p90 ${percentile(executionMs, 90).toFixed(3)} ms), ` +
      `client round trip median ${percentile(roundTripMs, 50).toFixed(3)} ms, over ${EXPLAIN_RUNS} runs`,
    '',
    '```',
    plan,
    '```',
  ].join('\n');
}

function freePort(): Promise<number> {
  return new Promise((done, fail) => {
    const server = createNetServer();
    server.once('error', fail);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => done(port));
    });
  });
}

function rssMb(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8').match(/^VmRSS:\s+(\d+) kB$/m);
  return line ? Number(line[1]) / 1024 : Number.NaN;
}

async function scrape(url: string): Promise<Map<string, number>> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const values = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || line === '') continue;
    const space = line.lastIndexOf(' ');
    values.set(line.slice(0, space), Number(line.slice(space + 1)));
  }
  return values;
}

/**
 * The built service on a million connections (sealed like real ones; ~1 % due at the start, the rest due over the
 * next hour, 2 % reauth_required, as --explain seeds them) refreshing against the bench token endpoint with its
 * default settings: its RSS every 30 s, and the claim's cost on the full table at the end.
 */
async function soak(adminUrl: string, endpoint: { url: string }, connections: number, minutes: number): Promise<void> {
  const database = await createDatabase(adminUrl, 'soak');
  const config = benchConfig(database.url, endpoint.url, 16);
  const dataSource = await new DataSource(dataSourceOptions(config)).initialize();
  let service: ChildProcess | undefined;
  try {
    await runMigrations(dataSource);
    const cipher = new TokenCipher(config);
    const seeding = performance.now();
    const now = new Date();
    await seed(dataSource, cipher, connections, (i) => ({
      due: new Date(now.getTime() + ((i % 3600) - 36) * 1000),
      reauth: i % 50 === 0,
    }));
    process.stdout.write(
      `seeded ${connections.toLocaleString('en-US')} connections in ${((performance.now() - seeding) / 1000).toFixed(0)} s\n`,
    );
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    service = fork(resolve('dist/src/main.js'), [], {
      stdio: 'inherit',
      env: {
        PATH: process.env.PATH,
        NODE_ENV: 'production',
        PORT: String(port),
        DATABASE_URL: database.url,
        API_KEYS: randomBytes(24).toString('hex'),
        TOKEN_ENCRYPTION_KEYS: `bench:${config.encryption.keys[0].key.toString('base64')}`,
        ATLASSIAN_CLIENT_ID: 'bench-client',
        ATLASSIAN_CLIENT_SECRET: 'bench-secret',
        ATLASSIAN_AUTH_URL: endpoint.url,
        ATLASSIAN_API_URL: endpoint.url,
        LOG_LEVEL: 'warn',
        // Memory settings to compare, passed on when set.
        ...(process.env.MALLOC_ARENA_MAX ? { MALLOC_ARENA_MAX: process.env.MALLOC_ARENA_MAX } : {}),
        ...(process.env.SOAK_NODE_OPTIONS ? { NODE_OPTIONS: process.env.SOAK_NODE_OPTIONS } : {}),
      },
    });
    const pid = service.pid!;
    for (let ready = false; !ready;) {
      ready = await fetch(`${url}/health/ready`).then(
        (r) => r.ok,
        () => false,
      );
      if (!ready) await new Promise((r) => setTimeout(r, 200));
    }
    const started = performance.now();
    let peak = 0;
    process.stdout.write(
      '| minute | service RSS | V8 heap used / total | external | refreshed so far | oldest due |\n|---|---|---|---|---|---|\n',
    );
    for (let elapsed = 0; elapsed <= minutes * 60_000; elapsed = performance.now() - started) {
      const rss = rssMb(pid);
      peak = Math.max(peak, rss);
      const metrics = await scrape(url);
      const refreshed = metrics.get('atlassian_token_refreshes_total{outcome="refreshed"}') ?? 0;
      const oldest = metrics.get('atlassian_token_refresh_oldest_due_seconds') ?? 0;
      const mb = (name: string) => ((metrics.get(name) ?? 0) / 1024 / 1024).toFixed(0);
      process.stdout.write(
        `| ${(elapsed / 60_000).toFixed(1)} | ${rss.toFixed(0)} MB | ${mb('nodejs_heap_size_used_bytes')} / ${mb('nodejs_heap_size_total_bytes')} MB | ` +
          `${mb('nodejs_external_memory_bytes')} MB | ${refreshed} | ${oldest.toFixed(0)} s |\n`,
      );
      await new Promise((r) => setTimeout(r, Math.min(SOAK_SAMPLE_MS, minutes * 60_000 - elapsed + 100)));
    }
    const finalRss = rssMb(pid);
    const final = await scrape(url);
    const client = new pg.Client({ connectionString: database.url });
    await client.connect();
    const claim = await claimCost(client, new Date()).finally(() => client.end());
    process.stdout.write(
      [
        '',
        `after ${minutes} min: service RSS ${finalRss.toFixed(0)} MB (peak ${peak.toFixed(0)} MB), ` +
          `${final.get('atlassian_token_refreshes_total{outcome="refreshed"}') ?? 0} refreshed, outcomes other than refreshed: ` +
          JSON.stringify(
            [...final].filter(([k, v]) => k.startsWith('atlassian_token_refreshes_total{') && !k.includes('"refreshed"') && v > 0),
          ),
        '',
        `### Claim on the full table after the soak`,
        '',
        claim,
        '',
      ].join('\n'),
    );
  } finally {
    if (service && service.exitCode === null) {
      const exited = new Promise((r) => service!.once('exit', r));
      service.kill('SIGTERM');
      await exited;
    }
    await dataSource.destroy();
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
      'soak-minutes': { type: 'string' },
      'soak-connections': { type: 'string', default: '1000000' },
    },
  });
  const connections = Number(values.connections);
  const concurrency = Number(values.concurrency);
  const rounds = Number(values.rounds);
  const adminUrl = process.env.BENCH_PG_URL || 'postgres://postgres@127.0.0.1:5432/postgres';
  Logger.overrideLogger(['error']);

  const endpoint = await startTokenEndpoint();
  if (values['soak-minutes'] !== undefined) {
    try {
      await soak(adminUrl, endpoint, Number(values['soak-connections']), Number(values['soak-minutes']));
    } finally {
      endpoint.child.kill();
    }
    return;
  }
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
    const [{ version }] = await dataSource.query<{ version: number }[]>(`SELECT min(version) AS version FROM connections`);
    if (runs.some((run) => run.refreshed !== connections) || version < rounds + 1) {
      throw new Error(`not every connection was refreshed (${runs.map((run) => run.refreshed).join(', ')} of ${connections})`);
    }
    const endpointRate = await tokenEndpointCeiling(endpoint.url, connections, concurrency);
    const updateRate = await updateCeiling(dataSource, ids, concurrency);
    const pgbenchRate = await pgbenchCeiling(dataSource, database.url);
    const best = Math.max(...runs.map((run) => run.perSecond));

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
      `| ceiling: pgbench, single-row UPDATEs of a ~1.2 KB row (${PGBENCH.clients} clients, ${PGBENCH.seconds} s) | ${pgbenchRate.toFixed(0)} updates/s |`,
      `| best round / pgbench's ceiling | ${(best / pgbenchRate).toFixed(2)} (best round / node pool's ceiling: ${(best / updateRate).toFixed(2)}) |`,
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
