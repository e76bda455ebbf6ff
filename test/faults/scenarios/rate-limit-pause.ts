import type { ApiCallRecord } from '../../../src/sandbox/sandbox.idp.js';
import { jsonBody, metricValue, request, type ErrorBody } from '../lib/http.js';
import type { Scenario } from '../lib/scenario.js';
import type { Stack } from '../lib/stack.js';
import { errorMessage, seconds, sleep } from '../lib/util.js';

const RETRY_AFTER_SECONDS = 60;
/** A pause taken on one replica must stop the others within this, and nothing may reach Atlassian after it. */
const SPREAD_MS = 1_000;
const WARM_UP_MS = 5_000;
/** How soon after the pause calls must reach Atlassian again. */
const RESUME_WITHIN_MS = 5_000;
const WORKERS = 6;
const CALLS_PER_SECOND = 30;
/** The proxied calls go to Jira issues; the client load's own calls (myself, /me) never do, so the 429 is theirs alone. */
const PROXIED_PATH = '/rest/api/3/issue';

/**
 * Scenario 7: Atlassian answers one proxied call with an app-wide 429 (`jira-quota-global-based`, Retry-After: 60)
 * while the SaaS backend calls Jira through all three replicas. The pause spreads: from a second after that 429 to
 * the end of the pause, no replica sends Atlassian any Jira call; callers get 429 `atlassian_rate_limited` with
 * Retry-After at once instead; and when the minute is over, calls flow again.
 */
export const rateLimitPause: Scenario = {
  id: '7-ratelimit',
  title: "Atlassian's app-wide 429 (Retry-After: 60) under proxied load on every replica",
  async run(report, stack) {
    await stack.waitHealthy();
    const load = new ProxyLoad(stack);
    load.start();
    try {
      await sleep(WARM_UP_MS);
      await stack.sandbox.addApiFaults({
        count: 1,
        status: 429,
        retryAfterSeconds: RETRY_AFTER_SECONDS,
        rateLimitReason: 'jira-quota-global-based',
        productPath: PROXIED_PATH,
      });
      const first = await until429(stack);
      const firstAt = Date.parse(first.at);
      const endsAt = firstAt + RETRY_AFTER_SECONDS * 1000;
      report.figure('first 429 answered by the sandbox at', first.at);

      await sleep(Math.max(0, firstAt + RETRY_AFTER_SECONDS * 500 - Date.now()));
      const during = await Promise.all(stack.inService().map((replica) => stack.metrics(replica)));
      await sleep(Math.max(0, endsAt + RESUME_WITHIN_MS - Date.now()));
      const stats = load.stop();
      await load.running;

      const proxied = (await stack.sandbox.apiCalls())
        .filter((call) => call.path.includes(PROXIED_PATH))
        .map((call) => ({
          ...call,
          atMs: Date.parse(call.at),
        }));
      const spreading = proxied.filter((call) => call.atMs > firstAt && call.atMs < firstAt + SPREAD_MS);
      const paused = proxied.filter((call) => call.atMs >= firstAt + SPREAD_MS && call.atMs < endsAt);
      const after = proxied.filter((call) => call.atMs >= endsAt);
      const resumedAfter = after.length > 0 ? after[0].atMs - endsAt : undefined;
      const limitedTotal = during.reduce(
        (sum, samples) => sum + metricValue(samples, 'atlassian_rate_limited_total', { reason: 'jira-quota-global-based' }),
        0,
      );
      const pausedScopes = during.map((samples) => metricValue(samples, 'atlassian_rate_limit_paused_scopes'));

      report.figure(
        'proxied calls (ok / Atlassian 429 as it came / held back with 429 atlassian_rate_limited / other)',
        `${stats.ok} / ${stats.upstream429} / ${stats.held} / ${stats.other}`,
      );
      report.figure('Jira calls that reached the sandbox in the second after the 429 (other replicas not told yet)', spreading.length);
      report.figure('Jira calls that reached the sandbox from 1 s after the 429 to the end of the pause', paused.length);
      report.figure('first call through after the pause ended', resumedAfter === undefined ? 'none' : `${seconds(resumedAfter)} s after`);
      report.figure('Jira calls that reached the sandbox after the pause', after.length);
      report.figure('atlassian_rate_limit_paused_scopes mid-pause, per replica', pausedScopes.join(' / '));

      report.zero('Jira calls reaching Atlassian from 1 s after the 429 until the pause ended', paused.length);
      report.check(
        'calls flow again within 5 s of the pause ending',
        resumedAfter !== undefined && resumedAfter <= RESUME_WITHIN_MS,
        `${resumedAfter}`,
      );
      report.check(
        'every replica held calls back',
        stats.heldByReplica.every((held) => held > 0),
        stats.heldByReplica.join(' / '),
      );
      report.zero('held-back answers without Retry-After, or with one beyond the pause', stats.badRetryAfter);
      report.zero('held-back answers without RateLimit-Reason jira-quota-global-based', stats.badReason);
      report.zero('proxied calls answered anything else', stats.other);
      report.check('/metrics counted the 429 by its reason', limitedTotal >= 1, `${limitedTotal}`);
      report.check(
        'every replica showed one paused scope mid-pause',
        pausedScopes.every((n) => n === 1),
        pausedScopes.join(' / '),
      );
      if (stats.samples.length > 0) report.log(`  client errors: ${stats.samples.join('; ')}`);
    } finally {
      load.stop();
      await load.running;
    }
  },
};

/** Polls the sandbox's call log for the first proxied call it answered 429. */
async function until429(stack: Stack): Promise<ApiCallRecord> {
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    const limited = (await stack.sandbox.apiCalls()).find((call) => call.status === 429 && call.path.includes(PROXIED_PATH));
    if (limited) return limited;
    await sleep(100);
  }
  throw new Error('the sandbox answered no proxied call 429 within 30 s');
}

/** What the proxied calls came back as, by kind (held back: the service's own 429 during the pause). */
interface ProxyStats {
  ok: number;
  upstream429: number;
  held: number;
  other: number;
  badRetryAfter: number;
  badReason: number;
  heldByReplica: number[];
  samples: string[];
}

/**
 * The SaaS backend's workers reading Jira issues through the proxy, round robin over the users and the replicas in
 * service, at a steady rate; what came back is counted by kind.
 */
class ProxyLoad {
  stopping = false;
  cursor = 0;
  running: Promise<void[]> | undefined;
  readonly stats: ProxyStats;

  constructor(readonly stack: Stack) {
    this.stats = {
      ok: 0,
      upstream429: 0,
      held: 0,
      other: 0,
      badRetryAfter: 0,
      badReason: 0,
      heldByReplica: stack.replicas.map(() => 0),
      samples: [],
    };
  }

  start(): void {
    const interval = (1000 * WORKERS) / CALLS_PER_SECOND;
    this.running = Promise.all(
      Array.from({ length: WORKERS }, async () => {
        while (!this.stopping) {
          const started = Date.now();
          await this.once().catch((error: unknown) => this.sample(errorMessage(error)));
          await sleep(Math.max(0, interval - (Date.now() - started)));
        }
      }),
    );
  }

  stop(): ProxyStats {
    this.stopping = true;
    return this.stats;
  }

  async once(): Promise<void> {
    const replicas = this.stack.inService();
    const n = this.cursor++;
    const replica = replicas[n % replicas.length];
    const user = this.stack.users[n % this.stack.users.length];
    const response = await request(
      `${replica.url}/v1/users/${encodeURIComponent(user.userId)}/proxy/jira/${user.cloudId}${PROXIED_PATH}/LOAD-${(n % 50) + 1}`,
      { headers: this.stack.auth() },
    );
    const body = await jsonBody<ErrorBody & { code?: number }>(response);
    if (response.status === 200) {
      this.stats.ok += 1;
    } else if (response.status === 429 && body.error?.code === 'atlassian_rate_limited') {
      this.stats.held += 1;
      this.stats.heldByReplica[replica.index] += 1;
      const retryAfter = Number(response.headers.get('retry-after'));
      if (!(retryAfter >= 1 && retryAfter <= RETRY_AFTER_SECONDS)) this.stats.badRetryAfter += 1;
      if (response.headers.get('ratelimit-reason') !== 'jira-quota-global-based') this.stats.badReason += 1;
    } else if (response.status === 429 && body.code === 429) {
      this.stats.upstream429 += 1;
    } else {
      this.stats.other += 1;
      this.sample(`HTTP ${response.status} ${body.error?.code ?? ''}`);
    }
  }

  sample(text: string): void {
    if (this.stats.samples.length < 5) this.stats.samples.push(text);
  }
}
