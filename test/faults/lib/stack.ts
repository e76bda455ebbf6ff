import { randomBytes } from 'node:crypto';
import { join, resolve } from 'node:path';
import pg from 'pg';
import type { ConnectionStatus } from '../../../src/connection-store/connection.entity.js';
import { expectJson, jsonBody, metricValue, parseMetrics, request, type ErrorBody, type MetricSample } from './http.js';
import { ClientLoad, type AccessToken, type LoadOptions } from './load.js';
import { createDatabase, dropDatabase, type ThrowawayCluster } from './postgres.js';
import { NodeProcess } from './processes.js';
import { SandboxClient } from './sandbox.js';
import { eventually, freePort, mapLimit, sleep } from './util.js';
import { WebhookReceiver } from './webhooks.js';

/** The build's output folder: this file runs as dist/test/faults/lib/stack.js. */
const DIST = resolve(import.meta.dirname, '../../..');
const MAIN = join(DIST, 'src/main.js');
const SANDBOX = join(DIST, 'src/sandbox/standalone.js');

/** Short lifetimes, so a minute holds several refresh cycles of every connection. */
export const TIMING = { accessTokenTtlSeconds: 20, refreshLeadSeconds: 8, refreshIntervalSeconds: 1, refreshConcurrency: 16 };
/** How long the SaaS backend wants a token to stay valid; below the 12 s a token lives before its refresh is due. */
const MIN_VALIDITY_SECONDS = 5;
const READY_TIMEOUT_MS = 60_000;
const CONNECT_CONCURRENCY = 8;

/** A user of the SaaS backend before it connects: its userId at the service, its login at the identity provider. */
export interface NewUser {
  userId: string;
  login: string;
}

/** What connecting a user establishes at the identity provider. */
export interface Connected {
  accountId: string;
  /** The user's first site. */
  cloudId: string;
}

export type User = NewUser & Connected;

/** POST /v1/users/{userId}/access-token's answer: the token on 200, the error body otherwise. */
export interface AccessTokenAnswer {
  status: number;
  body: Partial<AccessToken> & ErrorBody;
}

export interface StackOptions {
  name: string;
  logDir: string;
  /** The throwaway PostgreSQL cluster the database lives on, when it is not the shared server. */
  cluster: ThrowawayCluster | undefined;
  adminUrl: string;
  databaseName: string;
  replicas: number;
  users: number;
  load: LoadOptions;
  /** More of the replicas' environment, for a lane's scenarios. */
  env?: Record<string, string>;
}

/** What `health()` reads: the replicas' readiness, the connections' state, and the identity provider's queue. */
export interface Health {
  healthy: boolean;
  readiness: number[];
  total: number;
  active: number;
  expired: number;
  overdue: number;
  stale_leases: number;
  pendingFaults: number;
}

export class Replica {
  readonly url: string;
  draining = false;

  constructor(
    readonly index: number,
    readonly port: number,
    public process: NodeProcess,
  ) {
    this.url = `http://127.0.0.1:${port}`;
  }

  /** What a load balancer would send traffic to. */
  get inService(): boolean {
    return this.process.running && !this.draining;
  }
}

/**
 * One deployment under test: the sandbox identity provider in its own process, N replicas of the built service
 * (`node dist/src/main.js`) on one database, a webhook receiver, the users they connected, and the client load.
 */
export class Stack {
  readonly name: string;
  /** The throwaway PostgreSQL cluster the database lives on, when it is not the shared server. */
  readonly cluster: ThrowawayCluster | undefined;
  readonly logDir: string;
  readonly adminUrl: string;
  readonly databaseName: string;
  readonly replicaCount: number;
  readonly userCount: number;
  readonly apiKey = randomBytes(24).toString('hex');
  readonly encryptionKey = randomBytes(32).toString('base64');
  readonly webhookSecret = randomBytes(24).toString('hex');
  readonly receiver: WebhookReceiver;
  replicas: Replica[] = [];
  readonly users: User[] = [];
  readonly load: ClientLoad;
  /** More of the replicas' environment, for a lane's scenarios. */
  readonly env: Record<string, string>;
  databaseCreated = false;
  stopped = false;
  databaseUrl: string;
  sandboxOrigin: string;
  callbackUrl: string;
  sandbox: SandboxClient;
  sandboxProcess: NodeProcess | undefined;
  private pool: pg.Pool | undefined;

  constructor({ name, logDir, cluster, adminUrl, databaseName, replicas, users, load, env = {} }: StackOptions) {
    this.name = name;
    this.cluster = cluster;
    this.logDir = logDir;
    this.adminUrl = adminUrl;
    this.databaseName = databaseName;
    this.replicaCount = replicas;
    this.userCount = users;
    this.env = env;
    this.receiver = new WebhookReceiver(this.webhookSecret);
    this.load = new ClientLoad(this, { ...load, minValiditySeconds: MIN_VALIDITY_SECONDS });
  }

  async start(): Promise<void> {
    this.databaseUrl = await createDatabase(this.adminUrl, this.databaseName);
    this.databaseCreated = true;
    this.pool = new pg.Pool({ connectionString: this.databaseUrl, max: 2, connectionTimeoutMillis: 5_000 });
    // While a scenario has the database down, idle connections die; that is expected, not a reason to crash.
    this.pool.on('error', () => undefined);
    await this.receiver.start();

    const sandboxPort = await freePort();
    const ports: number[] = [];
    for (let i = 0; i < this.replicaCount; i += 1) ports.push(await freePort());
    this.sandboxOrigin = `http://127.0.0.1:${sandboxPort}`;
    // Replicas share one registered callback URL; any of them can finish a sign-in, the state is in the database.
    this.callbackUrl = `http://127.0.0.1:${ports[0]}/auth/atlassian/callback`;
    this.sandbox = new SandboxClient(this.sandboxOrigin);
    this.sandboxProcess = new NodeProcess({
      name: `${this.name}-sandbox`,
      script: SANDBOX,
      cwd: this.logDir,
      logFile: join(this.logDir, `${this.name}-sandbox.log`),
      env: {
        PATH: process.env.PATH,
        SANDBOX_PORT: String(sandboxPort),
        SANDBOX_REDIRECT_URIS: this.callbackUrl,
        SANDBOX_ACCESS_TOKEN_TTL_SECONDS: String(TIMING.accessTokenTtlSeconds),
      },
    }).start();
    await eventually(
      `${this.name}: sandbox up`,
      () => this.sandbox.stats(),
      () => true,
      { timeoutMs: READY_TIMEOUT_MS, intervalMs: 200 },
    );

    // Started together on an empty database: the migrations' advisory lock makes them take turns.
    this.replicas = ports.map((port, index) => new Replica(index, port, this.replicaProcess(index, port).start()));
    await Promise.all(this.replicas.map((replica) => this.waitReady(replica)));
  }

  replicaProcess(index: number, port: number): NodeProcess {
    return new NodeProcess({
      name: `${this.name}-replica-${index}`,
      script: MAIN,
      cwd: this.logDir,
      logFile: join(this.logDir, `${this.name}-replica-${index}.log`),
      env: {
        PATH: process.env.PATH,
        NODE_ENV: 'production',
        PORT: String(port),
        PUBLIC_URL: `http://127.0.0.1:${port}`,
        DATABASE_URL: this.databaseUrl,
        ATLASSIAN_CLIENT_ID: 'sandbox-client-id',
        ATLASSIAN_CLIENT_SECRET: 'sandbox-client-secret',
        ATLASSIAN_AUTH_URL: `${this.sandboxOrigin}/sandbox`,
        ATLASSIAN_API_URL: `${this.sandboxOrigin}/sandbox`,
        ATLASSIAN_CALLBACK_URL: this.callbackUrl,
        API_KEYS: this.apiKey,
        TOKEN_ENCRYPTION_KEYS: `k1:${this.encryptionKey}`,
        REFRESH_LEAD_SECONDS: String(TIMING.refreshLeadSeconds),
        REFRESH_INTERVAL_SECONDS: String(TIMING.refreshIntervalSeconds),
        REFRESH_CONCURRENCY: String(TIMING.refreshConcurrency),
        WEBHOOK_URL: this.receiver.url,
        WEBHOOK_SECRET: this.webhookSecret,
        LOG_LEVEL: 'warn',
        ...this.env,
      },
    });
  }

  async waitReady(replica: Replica, timeoutMs = READY_TIMEOUT_MS): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (!replica.process.running) {
        throw new Error(`${replica.process.name} exited (${JSON.stringify(replica.process.exit)}) before it was ready`);
      }
      if ((await this.readiness(replica)) === 200) return;
      if (Date.now() > deadline) throw new Error(`${replica.process.name} not ready within ${timeoutMs / 1000} s`);
      await sleep(200);
    }
  }

  /** GET /health/ready's status, or 0 when the replica does not answer. */
  async readiness(replica: Replica): Promise<number> {
    try {
      const response = await request(`${replica.url}/health/ready`, { timeoutMs: 5_000 });
      await response.body?.cancel();
      return response.status;
    } catch {
      return 0;
    }
  }

  inService(): Replica[] {
    return this.replicas.filter((replica) => replica.inService);
  }

  /** A replica of the same index, port and configuration, as an orchestrator restarts a container; in service once ready. */
  async restart(replica: Replica): Promise<void> {
    replica.draining = true;
    replica.process = this.replicaProcess(replica.index, replica.port).start();
    await this.waitReady(replica);
    replica.draining = false;
  }

  /** Connects `count` new users through the whole OAuth dance, spread over the replicas. */
  async connectUsers(count: number): Promise<void> {
    const fresh = Array.from({ length: count }, (_, i): NewUser => {
      const n = String(this.users.length + i + 1).padStart(4, '0');
      return { userId: `user-${n}@${this.name}`, login: `${this.name}-u${n}` };
    });
    const connected = await mapLimit(fresh, CONNECT_CONCURRENCY, async (user, i): Promise<User> => ({
      ...user,
      ...(await this.connect(user, i)),
    }));
    this.users.push(...connected);
  }

  /**
   * The SaaS backend mints a link on one replica; the browser opens it, consents (the sandbox's direct authorize
   * stands in for the consent page) and comes back to the shared callback URL, served here by another replica.
   */
  async connect(user: NewUser, spread = 0): Promise<Connected> {
    const replicas = this.inService();
    const minting = replicas[spread % replicas.length];
    const finishing = replicas[(spread + 1) % replicas.length];
    const link = await expectJson<{ url: string }>(
      await request(`${minting.url}/v1/users/${encodeURIComponent(user.userId)}/connect`, { method: 'POST', headers: this.auth() }),
      201,
      `connect link for ${user.userId}`,
    );
    const start = await request(link.url);
    await start.body?.cancel();
    if (start.status !== 302) throw new Error(`connect link for ${user.userId}: HTTP ${start.status}, expected a redirect`);
    const cookie = start.headers
      .getSetCookie()
      .map((header) => header.split(';')[0])
      .join('; ');
    const params = new URL(start.headers.get('location') ?? '').searchParams;
    const param = (name: string): string => {
      const value = params.get(name);
      if (value === null) throw new Error(`connect link for ${user.userId}: the authorize URL has no ${name}`);
      return value;
    };
    const consent = await this.sandbox.authorize({
      user: user.login,
      redirect_uri: param('redirect_uri'),
      scope: param('scope'),
      state: param('state'),
    });
    const callback = new URL(`${finishing.url}${new URL(param('redirect_uri')).pathname}`);
    callback.searchParams.set('code', consent.code);
    callback.searchParams.set('state', param('state'));
    const done = await request(callback, { headers: { Cookie: cookie } });
    await done.body?.cancel();
    if (done.status !== 200) throw new Error(`callback for ${user.userId}: HTTP ${done.status}`);
    const token = await this.accessToken(finishing, user.userId);
    if (token.status !== 200 || token.body.accessToken === undefined) {
      throw new Error(`first access token of ${user.userId}: HTTP ${token.status}`);
    }
    return { accountId: consent.accountId, cloudId: (await this.sandbox.sites(token.body.accessToken))[0].id };
  }

  auth(): Record<string, string> {
    return { Authorization: `Bearer ${this.apiKey}` };
  }

  async accessToken(replica: Replica, userId: string): Promise<AccessTokenAnswer> {
    const response = await request(`${replica.url}/v1/users/${encodeURIComponent(userId)}/access-token`, {
      method: 'POST',
      headers: this.auth(),
      json: { minValiditySeconds: MIN_VALIDITY_SECONDS },
    });
    return { status: response.status, body: await jsonBody<AccessTokenAnswer['body']>(response) };
  }

  /**
   * Every user's token through the API (round robin over the replicas), used at the identity provider.
   * Answers the users whose token could not be had or did not work, with why.
   */
  async sweepTokens(users: readonly User[] = this.users): Promise<string[]> {
    const replicas = this.inService();
    const problems = await mapLimit(users, 8, async (user, i) => {
      const token = await this.accessToken(replicas[i % replicas.length], user.userId);
      if (token.status !== 200 || token.body.accessToken === undefined) {
        return `${user.userId}: HTTP ${token.status} ${token.body.error?.code ?? ''}`;
      }
      const used = await this.sandbox.useToken(token.body.accessToken, user.cloudId);
      return used === 200 ? null : `${user.userId}: token refused (HTTP ${used})`;
    });
    return problems.filter((problem) => problem !== null);
  }

  /** The rows of a query on this stack's database, shaped as the caller says. */
  async query<R extends pg.QueryResultRow>(sql: string, params: unknown[] = []): Promise<R[]> {
    if (!this.pool) throw new Error(`${this.name}: no database before start()`);
    return (await this.pool.query<R>(sql, params)).rows;
  }

  /** Connections by status, read from the database. */
  async statusCounts(): Promise<Record<ConnectionStatus, number>> {
    const rows = await this.query<{ status: ConnectionStatus; n: number }>(
      `SELECT status, count(*)::int AS n FROM connections GROUP BY status`,
    );
    const counts = { active: 0, refresh_failing: 0, reauth_required: 0 };
    for (const row of rows) counts[row.status] = row.n;
    return counts;
  }

  /** Leases held by a replica process: its lease_owner is `<host>/<pid>/<random>`. */
  async leasesHeldBy(pid: number | undefined): Promise<number> {
    const [row] = await this.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM connections WHERE lease_id IS NOT NULL AND lease_owner LIKE $1`,
      [`%/${pid}/%`],
    );
    return row.n;
  }

  /**
   * What healthy means before a scenario starts: every replica ready, every connection active with an unexpired
   * access token, no refresh overdue, no lease left over, no fault queued at the identity provider.
   */
  async health(): Promise<Health> {
    const readiness = await Promise.all(this.inService().map((replica) => this.readiness(replica)));
    const [row] = await this.query<Pick<Health, 'total' | 'active' | 'expired' | 'overdue' | 'stale_leases'>>(`
      SELECT count(*)::int AS total,
        count(*) FILTER (WHERE status = 'active')::int AS active,
        count(*) FILTER (WHERE access_token_expires_at IS NULL OR access_token_expires_at <= now())::int AS expired,
        count(*) FILTER (WHERE due_at < now() - interval '5 seconds')::int AS overdue,
        count(*) FILTER (WHERE lease_id IS NOT NULL AND lease_expires_at <= now())::int AS stale_leases
      FROM connections`);
    const stats = await this.sandbox.stats();
    const healthy =
      readiness.length > 0 &&
      readiness.every((status) => status === 200) &&
      row.total === this.users.length &&
      row.active === row.total &&
      row.expired === 0 &&
      row.overdue === 0 &&
      row.stale_leases === 0 &&
      stats.pendingFaults === 0;
    return { healthy, readiness, ...row, pendingFaults: stats.pendingFaults };
  }

  async waitHealthy(timeoutMs = 60_000): Promise<Health> {
    return eventually(
      `${this.name}: healthy`,
      () => this.health(),
      (h) => h.healthy,
      { timeoutMs, intervalMs: 1_000 },
    );
  }

  async metrics(replica: Replica): Promise<MetricSample[]> {
    const response = await request(`${replica.url}/metrics`, { timeoutMs: 10_000 });
    if (response.status !== 200) throw new Error(`/metrics on replica ${replica.index}: HTTP ${response.status}`);
    return parseMetrics(await response.text());
  }

  /** A metric summed over the replicas in service (counters are per process). */
  async metricSum(name: string, labels?: Record<string, string>): Promise<number> {
    const all = await Promise.all(this.inService().map((replica) => this.metrics(replica)));
    return all.reduce((sum, samples) => sum + metricValue(samples, name, labels), 0);
  }

  secrets(): string[] {
    return [this.apiKey, this.encryptionKey, this.webhookSecret];
  }

  /** Log tails of every process, long lines cut, for a failure report. */
  tails(lines = 10): string {
    return [this.sandboxProcess, ...this.replicas.map((r) => r.process)]
      .filter((p) => p !== undefined)
      .map(
        (p) =>
          `--- ${p.name} (${p.logFile})\n${p
            .tail(lines)
            .split('\n')
            .map((l) => l.slice(0, 300))
            .join('\n')}`,
      )
      .join('\n');
  }

  /** Stops everything this stack started and drops its database; a second call does nothing. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.load.running) await this.load.stop();
    await Promise.all(this.replicas.map((replica) => replica.process.stop('SIGTERM', 10_000)));
    await this.sandboxProcess?.stop('SIGTERM', 5_000);
    await this.receiver.close().catch(() => undefined);
    await this.pool?.end().catch(() => undefined);
    // A throwaway cluster goes as a whole (and may be down when a run is interrupted).
    if (this.databaseCreated && !this.cluster) await dropDatabase(this.adminUrl, this.databaseName);
  }
}
