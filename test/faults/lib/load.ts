import { jsonBody, request, type ErrorBody } from './http.js';
import type { Replica, Stack, User } from './stack.js';
import { delta, errorMessage, sleep } from './util.js';

const MAX_SAMPLES = 5;

/** How hard the SaaS backend asks: `workers` in parallel, `callsPerSecond` between them. */
export interface LoadOptions {
  workers: number;
  callsPerSecond: number;
}

/** What the client load counts, from the start. */
export interface LoadCounters {
  tokenCalls: number;
  tokens: number;
  unavailable: number;
  unavailableWithoutRetryAfter: number;
  reauthRequired: number;
  tokenErrors: number;
  unreachable: number;
  shortTokens: number;
  uses: number;
  usesRejected: number;
  useErrors: number;
}

/** What happened between `beginWindow()` and `endWindow()`. */
export interface LoadWindow extends LoadCounters {
  minValidityLeftMs: number;
  samples: string[];
}

/** The access-token answer's body on 200 (SPEC). */
export interface AccessToken {
  accessToken: string;
  expiresAt: string;
}

/**
 * The SaaS backend under way: workers ask a replica (round robin over the replicas in service) for a user's access
 * token and use it at once against the identity provider's API, which counts every use of an expired or revoked
 * token. A scenario reads what happened between `beginWindow()` and `endWindow()`.
 */
export class ClientLoad {
  readonly workers: number;
  readonly intervalMs: number;
  readonly minValiditySeconds: number;
  readonly excluded = new Set<string>();
  cursor = 0;
  replicaCursor = 0;
  running: Promise<void[]> | null = null;
  stopping = false;
  readonly counters: LoadCounters = {
    tokenCalls: 0,
    tokens: 0,
    unavailable: 0,
    unavailableWithoutRetryAfter: 0,
    reauthRequired: 0,
    tokenErrors: 0,
    unreachable: 0,
    shortTokens: 0,
    uses: 0,
    usesRejected: 0,
    useErrors: 0,
  };
  base: LoadCounters;
  minValidityLeftMs: number;
  samples: string[];

  constructor(
    readonly stack: Stack,
    { workers, callsPerSecond, minValiditySeconds }: LoadOptions & { minValiditySeconds: number },
  ) {
    this.workers = workers;
    this.intervalMs = (1000 * workers) / callsPerSecond;
    this.minValiditySeconds = minValiditySeconds;
    this.beginWindow();
  }

  start(): void {
    this.stopping = false;
    this.running = Promise.all(Array.from({ length: this.workers }, () => this.work()));
  }

  async stop(): Promise<void> {
    this.stopping = true;
    await this.running;
    this.running = null;
  }

  /** Stop asking for this user's token (its grant is about to be revoked on purpose). */
  exclude(userId: string): void {
    this.excluded.add(userId);
  }

  include(userId: string): void {
    this.excluded.delete(userId);
  }

  beginWindow(): void {
    this.base = { ...this.counters };
    this.minValidityLeftMs = Infinity;
    this.samples = [];
  }

  /** The counts since `beginWindow()`, the shortest validity left on a token handed out, and a few error samples. */
  endWindow(): LoadWindow {
    return { ...delta(this.counters, this.base), minValidityLeftMs: this.minValidityLeftMs, samples: this.samples };
  }

  async work(): Promise<void> {
    while (!this.stopping) {
      const started = Date.now();
      await this.once().catch((error: unknown) => this.sample(`client: ${errorMessage(error)}`));
      await sleep(Math.max(0, this.intervalMs - (Date.now() - started)));
    }
  }

  nextUser(): User | undefined {
    const users = this.stack.users.filter((u) => !this.excluded.has(u.userId));
    if (users.length === 0) return undefined;
    this.cursor = (this.cursor + 1) % users.length;
    return users[this.cursor];
  }

  nextReplica(): Replica | undefined {
    const replicas = this.stack.inService();
    if (replicas.length === 0) return undefined;
    this.replicaCursor = (this.replicaCursor + 1) % replicas.length;
    return replicas[this.replicaCursor];
  }

  async once(): Promise<void> {
    const user = this.nextUser();
    const replica = this.nextReplica();
    if (!user || !replica) return;
    const served = replica.process;
    let response: Response;
    try {
      response = await request(`${replica.url}/v1/users/${encodeURIComponent(user.userId)}/access-token`, {
        method: 'POST',
        headers: { Authorization: `Bearer ${this.stack.apiKey}` },
        json: { minValiditySeconds: this.minValiditySeconds },
      });
    } catch (error) {
      this.counters.tokenCalls += 1;
      // The replica was taken out of service (killed, stopped) while the request was open.
      if (!replica.inService || replica.process !== served) this.counters.unreachable += 1;
      else {
        this.counters.tokenErrors += 1;
        this.sample(`access-token on replica ${replica.index}: ${errorMessage(error)}`);
      }
      return;
    }
    this.counters.tokenCalls += 1;
    if (response.status === 200) {
      const { accessToken, expiresAt } = (await response.json()) as AccessToken;
      this.counters.tokens += 1;
      const leftMs = Date.parse(expiresAt) - Date.now();
      this.minValidityLeftMs = Math.min(this.minValidityLeftMs, leftMs);
      if (leftMs < this.minValiditySeconds * 1000 - 1000) this.counters.shortTokens += 1;
      await this.use(user, accessToken);
      return;
    }
    const body = await jsonBody<ErrorBody>(response);
    if (response.status === 503 && body.error?.code === 'atlassian_unavailable') {
      this.counters.unavailable += 1;
      if (!response.headers.get('retry-after')) this.counters.unavailableWithoutRetryAfter += 1;
    } else if (response.status === 409 && body.error?.code === 'reauth_required') {
      this.counters.reauthRequired += 1;
    } else {
      this.counters.tokenErrors += 1;
      this.sample(`access-token on replica ${replica.index}: HTTP ${response.status} ${body.error?.code ?? ''}`);
    }
  }

  /** Alternates /me and Jira's /myself on the user's site. */
  async use(user: User, accessToken: string): Promise<void> {
    this.counters.uses += 1;
    const cloudId = this.counters.uses % 2 === 0 ? user.cloudId : undefined;
    let status: number;
    try {
      status = await this.stack.sandbox.useToken(accessToken, cloudId);
    } catch (error) {
      this.counters.useErrors += 1;
      this.sample(`token use: ${errorMessage(error)}`);
      return;
    }
    if (status === 401) {
      this.counters.usesRejected += 1;
      this.sample(`token of ${user.userId} refused by the identity provider`);
    } else if (status !== 200) {
      this.counters.useErrors += 1;
      this.sample(`token use: HTTP ${status}`);
    }
  }

  sample(text: string): void {
    if (this.samples.length < MAX_SAMPLES) this.samples.push(text);
  }
}
