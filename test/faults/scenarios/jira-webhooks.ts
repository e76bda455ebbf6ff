import type { JiraWebhookStats } from '../../../src/sandbox/sandbox.jira-webhooks.js';
import { expectJson, request } from '../lib/http.js';
import type { Scenario } from '../lib/scenario.js';
import type { Stack } from '../lib/stack.js';
import { eventually, mapLimit, seconds, sleep } from '../lib/util.js';

/** Registrations live two minutes at the sandbox; the replicas extend them once less than one minute remains. */
export const JIRA_WEBHOOK_LIFETIME_SECONDS = 120;
export const JIRA_WEBHOOK_EXTEND_BEFORE_SECONDS = 60;
/** Three extensions of every registration, the kill included. */
const RUN_MS = 4 * 60_000;
/** Slow enough that the victim has Jira calls open under its leases when it is killed. */
const SLOW_API_MS = 1_500;
const SUBSCRIPTION = { events: ['jira:issue_updated'], jqlFilter: 'project = FLT' };

/**
 * Scenario 8: three replicas keep every user's Jira webhook alive at a sandbox whose registrations live two minutes,
 * while one replica is killed (`kill -9`) holding leases of passes with Jira calls open, and restarted. Its connections
 * are taken over once their leases end; no registration expires, none is registered twice, every one is `active`.
 */
export const jiraWebhooks: Scenario = {
  id: '8-jira-webhooks',
  title: 'Jira webhooks with a two-minute lifetime, kept by three replicas, one killed mid-extension',
  async run(report, stack) {
    await stack.waitHealthy();
    await stack.sandbox.control('settings', { jiraWebhookLifetimeSeconds: JIRA_WEBHOOK_LIFETIME_SECONDS });
    const startedAt = Date.now();
    // What each user wants now replaces the defaults registered at connect; the new ones live two minutes.
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

    // Just before the first extensions fall due, Jira slows down and a replica is killed holding leases.
    await sleep(Math.max(0, startedAt + (JIRA_WEBHOOK_LIFETIME_SECONDS - JIRA_WEBHOOK_EXTEND_BEFORE_SECONDS - 5) * 1000 - Date.now()));
    const victim = stack.replicas[2];
    const pid = victim.process.pid;
    await stack.sandbox.control('latency', { apiMs: SLOW_API_MS });
    let held: number;
    try {
      held = await eventually(
        'the victim holding Jira webhook leases',
        () => leasesHeldBy(stack, pid),
        (n) => n >= 1,
        { timeoutMs: 60_000, intervalMs: 50 },
      );
      victim.draining = true;
      victim.process.signal('SIGKILL');
      await victim.process.exited;
    } finally {
      await stack.sandbox.control('latency', { apiMs: 0 });
    }
    const killedAt = Date.now();
    report.figure('killed replica', `replica ${victim.index} (pid ${pid}) holding ${held} Jira webhook leases`);
    await stack.restart(victim);
    report.figure('replica restarted, ready after', `${seconds(Date.now() - killedAt)} s`);

    await sleep(Math.max(0, startedAt + RUN_MS - Date.now()));
    const after = await jiraStats(stack);
    const statuses = await stack.query<{ status: string; n: number }>(
      `SELECT status, count(*)::int AS n FROM jira_webhook_registrations GROUP BY status ORDER BY status`,
    );
    const orphaned = await leasesHeldBy(stack, pid);
    report.figure(
      'registrations at the end (live / extended / expired / duplicate registrations)',
      `${after.live} / ${after.extended} / ${after.expired} / ${after.duplicateRegistrations}`,
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
    report.zero("the killed replica's leases left", orphaned);
  },
};

async function jiraStats(stack: Stack): Promise<JiraWebhookStats> {
  return expectJson<JiraWebhookStats>(
    await request(`${stack.sandbox.base}/_control/jira-webhooks`, { timeoutMs: 10_000 }),
    200,
    'sandbox jira-webhooks',
  );
}

async function leasesHeldBy(stack: Stack, pid: number | undefined): Promise<number> {
  const [row] = await stack.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM jira_webhook_subscriptions WHERE lease_id IS NOT NULL AND lease_owner LIKE $1`,
    [`%/${pid}/%`],
  );
  return row.n;
}
