import type { JiraWebhookStats } from '../../../src/sandbox/sandbox.jira-webhooks.js';
import { expectJson, request } from '../lib/http.js';
import type { Scenario } from '../lib/scenario.js';
import type { Replica, Stack } from '../lib/stack.js';
import { eventually, mapLimit, seconds, sleep } from '../lib/util.js';

/**
 * How long a connection can be left without a token by the kill: a token refresh the killed replica had claimed is
 * not made again until its lease ends (REFRESH_POLICY.leaseMs), and the deployment's 20-second access token has
 * expired long before that, so none of the connection's Jira calls can go out meanwhile.
 */
const REFRESH_LEASE_SECONDS = 90;
/**
 * The replicas extend a registration once less than the refresh lease and one more minute remain. A pass that finds
 * no token is retried within 10 s (jittered backoff), so the extension comes about 105 s after the kill at the latest,
 * while a registration that fell due shortly before the kill still has 150 s. With the one-minute lead this scenario
 * had, every registration whose connection's refresh the killed replica held expired (7 of 20 under load).
 */
export const JIRA_WEBHOOK_EXTEND_BEFORE_SECONDS = REFRESH_LEASE_SECONDS + 60;
/** Registrations live a minute longer than the lead at the sandbox, so each is extended every minute. */
export const JIRA_WEBHOOK_LIFETIME_SECONDS = JIRA_WEBHOOK_EXTEND_BEFORE_SECONDS + 60;
/** The run goes on this long after the registrations due at the kill would have expired without an extension. */
const AFTER_EXPIRY_MS = 30_000;
/** Slow enough that the victim has Jira calls and token refreshes open under its leases when it is killed. */
const SLOW_API_MS = 1_500;
const SLOW_TOKEN_MS = 3_000;
const SUBSCRIPTION = { events: ['jira:issue_updated'], jqlFilter: 'project = FLT' };

/**
 * Scenario 8: three replicas keep every user's Jira webhook alive at a sandbox whose registrations live 3.5 minutes,
 * while one replica is killed (`kill -9`) holding leases of passes with Jira calls open and, for some of those
 * connections, of their token refresh, and restarted. Its connections are taken over once their leases end
 * (the webhook lease after a third of the lead, the refresh lease after 90 s); no registration expires, none is
 * registered twice, every one is `active`.
 */
export const jiraWebhooks: Scenario = {
  id: '8-jira-webhooks',
  title: 'Jira webhooks with a 3.5-minute lifetime, kept by three replicas, one killed mid-extension',
  async run(report, stack) {
    await stack.waitHealthy();
    await stack.sandbox.control('settings', { jiraWebhookLifetimeSeconds: JIRA_WEBHOOK_LIFETIME_SECONDS });
    const startedAt = Date.now();
    // What each user wants now replaces the defaults registered at connect; the new ones live 3.5 minutes.
    await mapLimit(stack.users, 4, async (user, i) => {
      const replica = stack.inService()[i % stack.inService().length];
      await expectJson<unknown>(
        await request(`${replica.url}/v1/users/${encodeURIComponent(user.userId)}/jira-webhooks`, {
          method: 'PUT',
          headers: stack.auth(),
          json: { webhooks: [SUBSCRIPTION] },
        }),
        200,
        `PUT jira-webhooks of ${user.userId}`,
      );
    });
    const before = await jiraStats(stack);
    report.figure(
      'registrations after the PUTs (live / registered / deleted defaults)',
      `${before.live} / ${before.registered} / ${before.deleted}`,
    );

    // Just before the first extensions fall due, Jira and the token endpoint slow down, and a replica is killed
    // holding the leases of passes and of those connections' token refreshes (what a loaded machine does by chance).
    await sleep(Math.max(0, startedAt + (JIRA_WEBHOOK_LIFETIME_SECONDS - JIRA_WEBHOOK_EXTEND_BEFORE_SECONDS - 5) * 1000 - Date.now()));
    await stack.sandbox.control('latency', { apiMs: SLOW_API_MS, tokenMs: SLOW_TOKEN_MS });
    let victim: Replica;
    let held: VictimLeases;
    try {
      ({ victim, held } = await leaseHolderToKill(stack));
      victim.draining = true;
      victim.process.signal('SIGKILL');
      await victim.process.exited;
    } finally {
      await stack.sandbox.control('latency', { apiMs: 0, tokenMs: 0 });
    }
    const pid = victim.process.pid;
    const killedAt = Date.now();
    report.figure(
      'killed replica',
      `replica ${victim.index} (pid ${pid}) holding ${held.webhook} Jira webhook leases and ${held.refresh} token refresh ` +
        `leases, ${held.refreshing} connections under both`,
    );
    await stack.restart(victim);
    report.figure('replica restarted, ready after', `${seconds(Date.now() - killedAt)} s`);

    // Until then, how close any registration came to expiring, from the expiries Jira answered.
    const endAt = killedAt + JIRA_WEBHOOK_EXTEND_BEFORE_SECONDS * 1000 + AFTER_EXPIRY_MS;
    let leastLeftMs = Infinity;
    while (Date.now() < endAt) {
      const [row] = await stack.query<{ left_ms: number | null }>(
        `SELECT extract(epoch FROM min(expires_at) - now())::float8 * 1000 AS left_ms FROM jira_webhook_registrations WHERE status <> 'removed'`,
      );
      if (row.left_ms !== null) leastLeftMs = Math.min(leastLeftMs, row.left_ms);
      await sleep(Math.min(1_000, Math.max(0, endAt - Date.now())));
    }
    const after = await jiraStats(stack);
    const statuses = await stack.query<{ status: string; n: number }>(
      `SELECT status, count(*)::int AS n FROM jira_webhook_registrations GROUP BY status ORDER BY status`,
    );
    const orphaned = await victimLeases(stack, pid);
    report.figure(
      'registrations at the end (live / extended / expired / duplicate registrations)',
      `${after.live} / ${after.extended} / ${after.expired} / ${after.duplicateRegistrations}`,
    );
    report.figure(
      'least time a registration had left after the kill (sampled each second)',
      `${seconds(leastLeftMs)} s of ${JIRA_WEBHOOK_LIFETIME_SECONDS} s`,
    );
    report.figure('stored registrations by status', statuses.map((row) => `${row.status} ${row.n}`).join(', '));
    report.zero('registrations that expired at Jira', after.expired - before.expired);
    report.zero('registrations made twice', after.duplicateRegistrations);
    report.check(
      'every user has exactly one live registration',
      after.live === stack.users.length,
      `${after.live} of ${stack.users.length}`,
    );
    report.check(
      'every registration was extended at least twice',
      after.extended - before.extended >= 2 * stack.users.length,
      `${after.extended - before.extended} extensions`,
    );
    report.check(
      'every stored registration is active',
      statuses.length === 1 && statuses[0].status === 'active' && statuses[0].n === stack.users.length,
      JSON.stringify(statuses),
    );
    report.zero("the killed replica's leases left (Jira webhook and token refresh)", orphaned.webhook + orphaned.refresh);
  },
};

async function jiraStats(stack: Stack): Promise<JiraWebhookStats> {
  return expectJson<JiraWebhookStats>(
    await request(`${stack.sandbox.base}/_control/jira-webhooks`, { timeoutMs: 10_000 }),
    200,
    'sandbox jira-webhooks',
  );
}

/** How long the kill waits, once a replica holds Jira webhook leases, for one holding a token refresh lease under one too. */
const BOTH_LEASES_WAIT_MS = 2_000;

/**
 * The replica to kill: the first one seen holding a Jira webhook lease and, on the same connection, a token refresh
 * lease; failing that within BOTH_LEASES_WAIT_MS of the first Jira webhook lease, the one holding the most of those.
 * The first replica to look after the extensions fall due claims every due connection in one batch, so the victim is
 * whichever replica that is, not one chosen in advance (a fixed one held no lease in a whole minute of a CI run).
 */
async function leaseHolderToKill(stack: Stack): Promise<{ victim: Replica; held: VictimLeases }> {
  let firstLeaseAt: number | null = null;
  return eventually(
    'a replica holding Jira webhook leases',
    async () => {
      const holders = await Promise.all(
        stack.inService().map(async (replica) => ({ victim: replica, held: await victimLeases(stack, replica.process.pid) })),
      );
      const withBoth = holders.find((holder) => holder.held.refreshing >= 1);
      if (withBoth) return withBoth;
      const most = holders.filter((holder) => holder.held.webhook > 0).sort((a, b) => b.held.webhook - a.held.webhook)[0];
      if (!most) throw new Error(`no Jira webhook lease held (${JSON.stringify(holders.map((holder) => holder.held))})`);
      firstLeaseAt ??= Date.now();
      if (Date.now() - firstLeaseAt < BOTH_LEASES_WAIT_MS) throw new Error('no refresh lease under a Jira webhook lease yet');
      return most;
    },
    () => true,
    { timeoutMs: 60_000, intervalMs: 50 },
  );
}

/** The leases a replica holds: on Jira webhook passes, on token refreshes, and how many connections it holds under both. */
interface VictimLeases {
  webhook: number;
  refreshing: number;
  refresh: number;
}

async function victimLeases(stack: Stack, pid: number | undefined): Promise<VictimLeases> {
  const [row] = await stack.query<VictimLeases>(
    `SELECT count(*) FILTER (WHERE webhook)::int AS webhook, count(*) FILTER (WHERE webhook AND refresh)::int AS refreshing,
       count(*) FILTER (WHERE refresh)::int AS refresh
     FROM (SELECT s.lease_id IS NOT NULL AND s.lease_owner LIKE $1 AS webhook, c.lease_id IS NOT NULL AND c.lease_owner LIKE $1 AS refresh
           FROM connections c LEFT JOIN jira_webhook_subscriptions s ON s.connection_id = c.id) leases`,
    [`%/${pid}/%`],
  );
  return row;
}
