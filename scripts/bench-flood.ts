/**
 * Flood benchmark: `npm run bench:flood [-- --connections 500 --seconds 10 --path /v1/users/someone/connection]`.
 *
 * Starts the real service (the production module graph, LOG_LEVEL=info, its standard output read by this process
 * the way a log collector reads it) on a fresh PostgreSQL database in a child process, and floods it with autocannon
 * from another child process: N connections sending requests without an API key, as fast as they are answered.
 * Meanwhile this process asks `GET /health/live` every 50 ms on a fresh connection each time, as a kubelet's probe
 * does, and records how long each answer took. In the same run a bare NestJS app (one route answering 401 at once,
 * `/health/live`, nothing else: no logs, metrics or guards) is flooded the same way: the ceiling of Nest on Express
 * on this machine at that moment. Reports the refusals per second, the liveness latencies, the server's CPU time per
 * refusal and the log lines it wrote.
 *
 * The server comes from BENCH_PG_URL (an admin URL; default postgres://postgres@127.0.0.1:5432/postgres); the
 * benchmark creates its own database there and drops it at the end.
 */
import 'reflect-metadata';
import { type ChildProcess, fork } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { request } from 'node:http';
import { cpus, loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import { setTimeout as delay } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { Controller, Get, HttpCode, Module, Post, UnauthorizedException } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import autocannon from 'autocannon';
import { createApp } from '../src/app.factory.js';
import { loadConfig } from '../src/config/app-config.js';
import {
  type BenchServer,
  listenAndReport,
  percentile,
  scratchDatabase,
  SERVE_FLAG,
  serveAsBenchmarkChild,
  startServer,
  usage,
} from './bench-support.js';

const FLOOD_FLAG = '--flood';
const PROBE_EVERY_MS = 50;
const PROBE_TIMEOUT_MS = 10_000;
const SETTLE_MS = 2_000;
const BASELINE_PROBES = 40;

@Controller()
class BareController {
  @Get('health/live')
  live(): unknown {
    return { status: 'ok' };
  }

  @Get('v1/users/:userId/connection')
  refuseRead(): never {
    throw new UnauthorizedException();
  }

  @Post('v1/users/:userId/access-token')
  @HttpCode(200)
  refuseWrite(): never {
    throw new UnauthorizedException();
  }
}

@Module({ controllers: [BareController] })
class BareModule {}

/** Child process: the real service or the bare app; reports its port when listening, and its CPU time when asked. */
async function serve(kind: string): Promise<void> {
  serveAsBenchmarkChild();
  const app =
    kind === 'bare'
      ? await NestFactory.create(BareModule, { logger: false })
      : await createApp({ config: loadConfig(process.env, { dataDir: '/nonexistent-bench-data' }) });
  await listenAndReport(app);
}

/** Child process: autocannon, so that its 500 connections do not slow this process' liveness probes. */
async function flood(): Promise<void> {
  const { url, connections, seconds, method, path } = JSON.parse(process.argv[3]) as FloodOptions;
  const result = await autocannon({ url: `${url}${path}`, method, connections, duration: seconds, timeout: 30 });
  const statuses: Record<string, number> = {};
  for (const [key, value] of Object.entries(result)) {
    if (/^\dxx$/.test(key)) statuses[key] = value as number;
  }
  const report = { requests: result.requests.total, seconds: result.duration, statuses, errors: result.errors, timeouts: result.timeouts };
  process.send?.(report, () => process.exit(0));
}

interface FloodOptions {
  readonly url: string;
  readonly connections: number;
  readonly seconds: number;
  readonly method: 'GET' | 'POST';
  readonly path: string;
}

interface FloodResult {
  readonly requests: number;
  readonly seconds: number;
  readonly statuses: Record<string, number>;
  readonly errors: number;
  readonly timeouts: number;
}

interface Server extends BenchServer {
  /** Lines the server wrote to its standard output so far. */
  readonly lines: () => number;
}

/** A server whose standard output is counted in lines, as a log collector would read it. */
async function startCountedServer(kind: 'app' | 'bare', env: Record<string, string>): Promise<Server> {
  const server = await startServer(kind, env, 'pipe');
  let lines = 0;
  server.child.stdout!.on('data', (chunk: Buffer) => {
    for (let at = chunk.indexOf(10); at >= 0; at = chunk.indexOf(10, at + 1)) lines += 1;
  });
  return { ...server, lines: () => lines };
}

/** One liveness probe on a new connection, as a kubelet makes it: milliseconds to the whole answer, or Infinity. */
function probe(url: string): Promise<number> {
  const started = performance.now();
  return new Promise((resolve) => {
    const req = request(`${url}/health/live`, { agent: false, timeout: PROBE_TIMEOUT_MS }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode === 200 ? performance.now() - started : Infinity));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(Infinity));
    req.end();
  });
}

/** Probes every PROBE_EVERY_MS until `done` settles, each on its own connection, without waiting for the previous. */
async function probeWhile<T>(url: string, done: Promise<T>): Promise<{ result: T; latencies: number[] }> {
  const pending: Promise<number>[] = [];
  let finished = false;
  const result = done.finally(() => {
    finished = true;
  });
  while (!finished) {
    pending.push(probe(url));
    await Promise.race([delay(PROBE_EVERY_MS), result]);
  }
  return { result: await result, latencies: await Promise.all(pending) };
}

interface Measured {
  readonly flood: FloodResult;
  readonly probes: number[];
  readonly baseline: number[];
  readonly cpuMicrosPerRequest: number;
  readonly logLines: number;
}

async function measure(server: Server, options: Omit<FloodOptions, 'url'>): Promise<Measured> {
  const baseline: number[] = [];
  for (let i = 0; i < BASELINE_PROBES; i++) {
    baseline.push(await probe(server.url));
    await delay(PROBE_EVERY_MS);
  }
  const before = await usage(server.child);
  const linesBefore = server.lines();
  const driver = fork(process.argv[1], [FLOOD_FLAG, JSON.stringify({ ...options, url: server.url })], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const flooded = new Promise<FloodResult>((resolve, reject) => {
    driver.once('message', (message: FloodResult) => resolve(message));
    driver.once('exit', (code) => reject(new Error(`the flood exited with ${code}`)));
  });
  const { result, latencies } = await probeWhile(server.url, flooded);
  const after = await usage(server.child);
  await delay(SETTLE_MS);
  return {
    flood: result,
    probes: latencies,
    baseline,
    cpuMicrosPerRequest: (after.cpuMicros - before.cpuMicros) / Math.max(1, result.requests),
    logLines: server.lines() - linesBefore,
  };
}

function row(label: string, run: Measured): string {
  const sorted = [...run.probes].sort((a, b) => a - b);
  const base = [...run.baseline].sort((a, b) => a - b);
  const failed = sorted.filter((ms) => ms === Infinity).length;
  const ms = (value: number) => (value === Infinity ? 'failed' : `${value.toFixed(1)} ms`);
  const statuses = Object.entries(run.flood.statuses)
    .filter(([, count]) => count > 0)
    .map(([status, count]) => `${status} ${count}`)
    .join(', ');
  return (
    `| ${label} | ${(run.flood.requests / run.flood.seconds).toFixed(0)} (${statuses}; ${run.flood.errors} errors) | ` +
    `${ms(percentile(sorted, 50))} | ${ms(percentile(sorted, 99))} | ${ms(sorted.at(-1) ?? Number.NaN)} | ${sorted.length} (${failed} failed) | ` +
    `${ms(percentile(base, 50))} | ${run.cpuMicrosPerRequest.toFixed(0)} µs | ${run.logLines} |`
  );
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      connections: { type: 'string', default: '500' },
      seconds: { type: 'string', default: '10' },
      method: { type: 'string', default: 'GET' },
      path: { type: 'string', default: '/v1/users/someone/connection' },
    },
  });
  const options = {
    connections: Number(values.connections),
    seconds: Number(values.seconds),
    method: values.method === 'POST' ? ('POST' as const) : ('GET' as const),
    path: values.path,
  };
  const database = await scratchDatabase('flood');
  const servers: ChildProcess[] = [];
  try {
    const app = await startCountedServer('app', {
      DATABASE_URL: database.url,
      API_KEYS: `bench-${randomBytes(16).toString('hex')}`,
      TOKEN_ENCRYPTION_KEYS: `bench:${randomBytes(32).toString('base64')}`,
      LOG_LEVEL: 'info',
    });
    servers.push(app.child);
    const bare = await startCountedServer('bare', {});
    servers.push(bare.child);
    const loadBefore = loadavg()[0];
    const bareRun = await measure(bare, options);
    const appRun = await measure(app, options);
    const loadAfter = loadavg()[0];
    const lines = [
      `## Flood run: ${options.connections} connections for ${options.seconds} s, ${options.method} ${options.path} without an API key; ` +
        `Node ${process.version}, ${cpus().length} CPUs, load average ${loadBefore.toFixed(1)} before, ${loadAfter.toFixed(1)} after`,
      '',
      '| server | flood requests/s (answers) | /health/live p50 | p99 | max | probes | p50 without flood | server CPU per flood request | log lines written |',
      '|---|---|---|---|---|---|---|---|---|',
      row('service', appRun),
      row('bare NestJS app: 401 at once, no logs, metrics or guards', bareRun),
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
  } finally {
    for (const child of servers) child.kill();
    await database.drop();
  }
}

const role = process.argv[2];
const run = role === SERVE_FLAG ? serve(process.argv[3]) : role === FLOOD_FLAG ? flood() : main().then(() => process.exit(0));
run.catch((error: unknown) => {
  process.stderr.write(`Flood benchmark failed: ${(error as Error).stack ?? String(error)}\n`);
  process.exit(1);
});
