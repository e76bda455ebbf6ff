import { execFile } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { tailOf } from './processes.mjs';
import { freePort } from './util.mjs';

const run = promisify(execFile);

/** The machine's PostgreSQL server (an admin URL): each run creates its own databases there and drops them. */
export const SHARED_ADMIN_URL = process.env.TEST_PG_URL || 'postgres://postgres@127.0.0.1:5432/postgres';
/** Where initdb and pg_ctl live, for the throwaway clusters: PG_BIN, else Debian's newest installed version, else PATH. */
const PG_BIN = process.env.PG_BIN || newestDebianPostgres();

function newestDebianPostgres() {
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return '';
  const versions = readdirSync(root)
    .filter((version) => existsSync(join(root, version, 'bin', 'initdb')))
    .sort((a, b) => Number(b) - Number(a));
  return versions.length > 0 ? join(root, versions[0], 'bin') : '';
}

export async function withClient(url, work) {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5_000 });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

export function databaseUrl(adminUrl, name) {
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return url.toString();
}

export async function createDatabase(adminUrl, name) {
  await withClient(adminUrl, (client) => client.query(`CREATE DATABASE "${name}"`));
  return databaseUrl(adminUrl, name);
}

export async function dropDatabase(adminUrl, name) {
  await withClient(adminUrl, (client) => client.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`));
}

/**
 * A PostgreSQL cluster of our own, in a temporary folder, that a scenario may stop and start at will (the
 * machine's shared server is never touched). Postgres refuses to run as root: as root, every command runs as the
 * `postgres` user, which owns the folder.
 */
export class ThrowawayCluster {
  constructor(dir, port) {
    this.dir = dir;
    this.port = port;
    this.dataDir = join(dir, 'data');
    this.logFile = join(dir, 'postgres.log');
    this.adminUrl = `postgres://postgres@127.0.0.1:${port}/postgres`;
    this.started = false;
  }

  static async create() {
    const dir = mkdtempSync(join(tmpdir(), 'ats-faults-pg-'));
    const cluster = new ThrowawayCluster(dir, await freePort());
    try {
      if (asRoot()) chownSync(dir, ...postgresIds(await run('id', ['-u', 'postgres']), await run('id', ['-g', 'postgres'])));
      await cluster.pg('initdb', ['-D', cluster.dataDir, '-U', 'postgres', '-A', 'trust', '-E', 'UTF8', '--locale=C', '--no-sync']);
      await cluster.start();
      return cluster;
    } catch (error) {
      await cluster.destroy();
      throw error;
    }
  }

  async start() {
    const options = `-p ${this.port} -k ${this.dir} -c listen_addresses=127.0.0.1 -c max_connections=200`;
    await this.pg('pg_ctl', ['-D', this.dataDir, '-o', options, '-l', this.logFile, '-w', '-t', '30', 'start']);
    this.started = true;
  }

  /** A fast shutdown, as an operator's restart or a managed database's failover does it: sessions are cut. */
  async stop() {
    await this.pg('pg_ctl', ['-D', this.dataDir, '-m', 'fast', '-w', '-t', '30', 'stop']);
    this.started = false;
  }

  /** Stops the server if it runs and removes the folder; safe to call twice and after a failed create. */
  async destroy() {
    if (existsSync(join(this.dataDir, 'postmaster.pid'))) {
      await this.pg('pg_ctl', ['-D', this.dataDir, '-m', 'immediate', '-w', '-t', '30', 'stop']).catch(() => undefined);
    }
    this.started = false;
    rmSync(this.dir, { recursive: true, force: true });
  }

  logTail(lines = 20) {
    return tailOf(this.logFile, lines);
  }

  async pg(program, args) {
    const binary = PG_BIN ? join(PG_BIN, program) : program;
    const [command, commandArgs] = asRoot() ? ['runuser', ['-u', 'postgres', '--', binary, ...args]] : [binary, args];
    try {
      await run(command, commandArgs, { cwd: this.dir, timeout: 60_000 });
    } catch (error) {
      throw new Error(`${program} failed: ${(error.stderr || error.message).trim()}`, { cause: error });
    }
  }
}

function asRoot() {
  return process.getuid?.() === 0;
}

function postgresIds(uid, gid) {
  return [Number(uid.stdout.trim()), Number(gid.stdout.trim())];
}
