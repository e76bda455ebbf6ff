/**
 * What the HTTP benchmarks share: a scratch database on BENCH_PG_URL, servers run as child processes of the script
 * (each reports its port once listening and its CPU time and system calls when asked), load turns recorded in a
 * Tally, and percentiles.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { INestApplication } from '@nestjs/common';
import pg from 'pg';

/** The argument that makes a benchmark script serve, in a child process, instead of driving the benchmark. */
export const SERVE_FLAG = '--serve';
const USAGE_QUERY = 'usage';

/** The PostgreSQL server's admin URL; each run creates its own database there and drops it at the end. */
export const BENCH_PG_URL = process.env.BENCH_PG_URL || 'postgres://postgres@127.0.0.1:5432/postgres';

export async function admin<T>(url: string, work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

export interface ScratchDatabase {
  readonly url: string;
  drop(): Promise<void>;
}

export async function scratchDatabase(benchmark: string): Promise<ScratchDatabase> {
  const name = `ats_bench_${benchmark}_${randomBytes(3).toString('hex')}`;
  await admin(BENCH_PG_URL, (client) => client.query(`CREATE DATABASE "${name}"`));
  const url = new URL(BENCH_PG_URL);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    drop: async () => {
      await admin(BENCH_PG_URL, (client) => client.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`));
    },
  };
}

/**
 * In a server child process: exits normally when the benchmark stops it (so that `--cpu-prof` can write its profile)
 * and answers the benchmark's usage queries.
 */
export function serveAsBenchmarkChild(): void {
  process.once('SIGTERM', () => process.exit(0));
  process.on('message', (message: unknown) => {
    if (message === COLLECT) {
      collectHere();
      process.send?.({ collected: true });
      return;
    }
    if (message !== USAGE_QUERY) return;
    const { user, system } = process.cpuUsage();
    process.send?.({ cpuMicros: user + system, syscalls: ioSyscalls() });
  });
}

const COLLECT = 'collect';

let gc: (() => void) | undefined;

/** A full garbage collection in this process now (V8's `gc`, made reachable once without --expose-gc on the command line). */
function collectHere(): void {
  if (!gc) {
    setFlagsFromString('--expose-gc');
    gc = runInNewContext('gc') as () => void;
  }
  gc();
}

/**
 * A full collection in this process and in each server, before a recorded turn: what one target's turn left behind
 * (a saturating turn leaves a lot) is not collected during another's, where its pause would count as that target's.
 */
export async function collectGarbage(children: readonly ChildProcess[]): Promise<void> {
  collectHere();
  await Promise.all(children.map((child) => reply(child, 'collected', COLLECT)));
}

/** In a server child process: listens on a free port and tells the benchmark which. */
export async function listenAndReport(app: INestApplication): Promise<void> {
  await app.listen(0, '127.0.0.1');
  process.send?.({ port: Number(new URL(await app.getUrl()).port) });
}

/**
 * Read and write system calls (sockets, pipes, files) this process has made so far, from Linux' /proc/self/io; NaN
 * elsewhere. On a virtual machine each one costs microseconds: a request's share of them tells batching apart.
 */
function ioSyscalls(): number {
  try {
    const io = readFileSync('/proc/self/io', 'utf8');
    return Number(/^syscr: (\d+)$/m.exec(io)?.[1]) + Number(/^syscw: (\d+)$/m.exec(io)?.[1]);
  } catch {
    return Number.NaN;
  }
}

export interface BenchServer {
  readonly url: string;
  readonly child: ChildProcess;
}

/** Forks this script as a server of `kind` (`<script> --serve <kind>`) and waits until it listens. */
export async function startServer(kind: string, env: Record<string, string>, stdout: 'ignore' | 'pipe' = 'ignore'): Promise<BenchServer> {
  const child = fork(process.argv[1], [SERVE_FLAG, kind], { env: { ...process.env, ...env }, stdio: ['ignore', stdout, 'inherit', 'ipc'] });
  const { port } = await reply<{ port: number }>(child, 'port');
  return { url: `http://127.0.0.1:${port}`, child };
}

/** The child's next message that has `field`, after sending it `send`; fails if the child exits first. */
export function reply<T>(child: ChildProcess, field: string, send?: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const exited = (code: number | null) => reject(new Error(`a benchmark server exited with ${code}`));
    const answer = (message: Record<string, unknown>) => {
      if (!(field in message)) return;
      child.off('message', answer);
      child.off('exit', exited);
      resolve(message as T);
    };
    child.on('message', answer);
    child.once('exit', exited);
    if (send) child.send(send);
  });
}

export interface Usage {
  /** CPU time (user + system, all threads) in microseconds. */
  readonly cpuMicros: number;
  readonly syscalls: number;
}

/** What the server process has used so far. */
export function usage(child: ChildProcess): Promise<Usage> {
  return reply<Usage>(child, 'cpuMicros', USAGE_QUERY);
}

/** The value at percentile `p` of ascending `sorted`; NaN when empty. */
export function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}

export interface Measured {
  readonly requestsPerSecond: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly requests: number;
  readonly failed: number;
  /** The server process' own CPU time per answered request. */
  readonly cpuMicrosPerRequest: number;
  /** The server process' read and write system calls per answered request. */
  readonly syscallsPerRequest: number;
}

/** A request's start (milliseconds since the epoch, as every process of the run reads it) and its latency. */
export interface Span {
  readonly startMs: number;
  readonly latencyMs: number;
}

/** Latencies and failures of one server, gathered over all its recorded turns. */
export class Tally {
  readonly latenciesMs: number[] = [];
  /** Each request's start as well, where a turn records it (to set requests beside the machine's stalls). */
  readonly spans: Span[] = [];
  failed = 0;
  seconds = 0;
  cpuMicros = 0;
  syscalls = 0;

  /** Adds what the server used between two usage readings around a turn. */
  addUsage(before: Usage, after: Usage): void {
    this.cpuMicros += after.cpuMicros - before.cpuMicros;
    this.syscalls += after.syscalls - before.syscalls;
  }

  result(): Measured {
    const sorted = [...this.latenciesMs].sort((a, b) => a - b);
    return {
      requestsPerSecond: sorted.length / this.seconds,
      p50Ms: percentile(sorted, 50) || 0,
      p99Ms: percentile(sorted, 99) || 0,
      requests: sorted.length,
      failed: this.failed,
      cpuMicrosPerRequest: this.cpuMicros / sorted.length,
      syscallsPerRequest: this.syscalls / sorted.length,
    };
  }
}

const STALL_WATCH = 'stall-watch';
const STALL_TICK_MS = 2;
/** A wake this much later than asked is a stall; an idle process on an idle machine wakes within about 1 ms. */
const STALL_MS = 5;

/** When the machine stopped a process that had nothing to do: from (milliseconds since the epoch), for how long. */
export interface Stall {
  readonly atMs: number;
  readonly lateMs: number;
}

/**
 * Starts a process that does nothing but wake every 2 ms and note each wake more than 5 ms late. It has no work of its
 * own, so its late wakes are the machine's stalls (the hypervisor, another tenant of the host, the kernel), not a
 * server's: requests under way during one are slow for a reason no server of the run has.
 */
export async function startStallWatch(): Promise<ChildProcess> {
  const child = fork(process.argv[1], [SERVE_FLAG, STALL_WATCH], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
  await reply(child, 'watching');
  return child;
}

/** The stalls the watch has seen so far. */
export async function stallsSeen(child: ChildProcess): Promise<Stall[]> {
  return (await reply<{ stalls: Stall[] }>(child, 'stalls', 'stalls')).stalls;
}

function watchStalls(): void {
  const stalls: Stall[] = [];
  let last = performance.now();
  setInterval(() => {
    const now = performance.now();
    const lateMs = now - last - STALL_TICK_MS;
    if (lateMs > STALL_MS) stalls.push({ atMs: performance.timeOrigin + last + STALL_TICK_MS, lateMs });
    last = now;
  }, STALL_TICK_MS);
  process.once('SIGTERM', () => process.exit(0));
  process.on('message', (message: unknown) => {
    if (message === 'stalls') process.send?.({ stalls });
  });
  process.send?.({ watching: true });
}

/** The requests of `spans` under way during one of `stalls`, and the others. */
export function splitByStalls(spans: readonly Span[], stalls: readonly Stall[]): { during: Span[]; others: Span[] } {
  const during: Span[] = [];
  const others: Span[] = [];
  for (const span of spans) {
    const end = span.startMs + span.latencyMs;
    const hit = stalls.some((stall) => stall.atMs < end && stall.atMs + stall.lateMs > span.startMs);
    (hit ? during : others).push(span);
  }
  return { during, others };
}

/** A benchmark script's entry: a server child (`<script> --serve <kind>`) or the benchmark itself; a failure exits 1. */
export function runBenchmarkScript(main: () => Promise<void>, serve: (kind: string) => Promise<void>): void {
  const child = process.argv[2] === SERVE_FLAG;
  if (child && process.argv[3] === STALL_WATCH) return watchStalls();
  const run = child ? serve(process.argv[3]) : main().then(() => process.exit(0));
  run.catch((error: unknown) => {
    process.stderr.write(`Benchmark failed: ${error instanceof Error ? (error.stack ?? error.message) : JSON.stringify(error)}\n`);
    process.exit(1);
  });
}
