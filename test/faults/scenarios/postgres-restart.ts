import { metricValue, request } from '../lib/http.js';
import type { Scenario } from '../lib/scenario.js';
import { TIMING, type Replica } from '../lib/stack.js';
import { delta, eventually, seconds, sleep } from '../lib/util.js';

/** How long the database stays down: several refresh cycles' worth of connections fall due meanwhile. */
const DOWN_MS = 15_000;
/** A refresh whose write the restart cut keeps its lease this long (90 s) before it is recovered. */
const CATCH_UP_TIMEOUT_MS = 130_000;

/**
 * Scenario 3: the database restarts mid-cycle (a fast shutdown, as a failover or an operator's restart does). The
 * replicas must say they are not ready while it is down, stay up, reconnect on their own and catch up.
 */
export const postgresRestart: Scenario = {
  id: '3-postgres',
  title: 'PostgreSQL restarted mid-cycle',
  async run(report, stack, { cluster }) {
    if (!cluster) throw new Error('this scenario needs a throwaway PostgreSQL cluster');
    await stack.waitHealthy();
    const replicas = stack.inService();
    const pids = replicas.map((r) => r.process.pid);
    const before = await stack.sandbox.stats();
    const recoveredBefore = await stack.metricSum('atlassian_token_refresh_leases_recovered_total');
    stack.load.beginWindow();
    await eventually(
      'refreshes under way',
      () => stack.sandbox.stats(),
      (s) => s.refreshes > before.refreshes,
      { timeoutMs: 15_000, intervalMs: 100 },
    );

    const stoppedAt = Date.now();
    await cluster.stop();
    const duringStop = await stack.sandbox.stats();
    const notReady = await report.within(
      'every replica reports not ready (/health/ready 503)',
      () => Promise.all(replicas.map((r) => stack.readiness(r))),
      (statuses) => statuses.every((s) => s === 503),
      { timeoutMs: 10_000, intervalMs: 200 },
    );
    if (notReady) report.figure('not ready after', `${seconds(Date.now() - stoppedAt)} s`);
    const readinessWhileDown = new Set<number>();
    const liveWhileDown = new Set<number>();
    while (Date.now() < stoppedAt + DOWN_MS) {
      for (const replica of replicas) {
        readinessWhileDown.add(await stack.readiness(replica));
        liveWhileDown.add(await liveness(replica));
      }
      await sleep(1_000);
    }
    report.check(
      'readiness stayed 503 while the database was down',
      [...readinessWhileDown].every((s) => s === 503),
      [...readinessWhileDown].join(','),
    );
    report.check(
      'liveness stayed 200 while the database was down',
      [...liveWhileDown].every((s) => s === 200),
      [...liveWhileDown].join(','),
    );
    const whileDown = delta(await stack.sandbox.stats(), duringStop);

    await cluster.start();
    const restartedAt = Date.now();
    report.figure('database down for', `${seconds(restartedAt - stoppedAt)} s`);
    await report.within(
      'every replica ready again on its own',
      () => Promise.all(replicas.map((r) => stack.readiness(r))),
      (statuses) => statuses.every((s) => s === 200),
      { timeoutMs: 60_000, intervalMs: 200 },
    );
    report.figure('ready again after the restart', `${seconds(Date.now() - restartedAt)} s`);

    const caughtUp = await report.within(
      'caught up: every connection active and refreshed since the restart',
      () =>
        stack.query<{ total: number; fresh: number }>(
          `SELECT count(*)::int AS total,
             count(*) FILTER (WHERE status = 'active' AND last_refreshed_at > $1 AND access_token_expires_at > now())::int AS fresh
           FROM connections`,
          [new Date(restartedAt)],
        ),
      ([row]) => row.total === stack.users.length && row.fresh === row.total,
      { timeoutMs: CATCH_UP_TIMEOUT_MS, intervalMs: 1_000 },
    );
    if (caughtUp) report.figure('caught up after the restart', `${seconds(Date.now() - restartedAt)} s`);

    const idp = delta(await stack.sandbox.stats(), before);
    const recovered = (await stack.metricSum('atlassian_token_refresh_leases_recovered_total')) - recoveredBefore;
    const load = stack.load.endWindow();
    report.figure('refreshes answered while the database was down', whileDown.refreshes);
    report.figure('leases recovered / refresh tokens presented again inside the leeway', `${recovered} / ${idp.reuseWithinLeeway}`);
    report.figure(
      'client calls',
      `${load.tokenCalls}, ${load.tokens} tokens, ${load.tokenErrors} errors while the database was down${load.samples.length ? ` (${load.samples.slice(0, 2).join('; ')})` : ''}`,
    );
    report.check(
      'same processes throughout (no crash, no restart loop)',
      stack.replicas.every((r, i) => r.process.running && r.process.pid === pids[i]),
      stack.replicas.map((r) => `${r.process.pid} ${JSON.stringify(r.process.exit)}`).join(', '),
    );
    report.check(
      'every reuse inside the leeway was a recovered lease',
      idp.reuseWithinLeeway <= recovered,
      `${idp.reuseWithinLeeway} reuses, ${recovered} recoveries`,
    );
    report.zero('refresh tokens presented after the leeway', idp.reuseAfterLeeway);
    report.zero('grants revoked', idp.grantsRevoked);
    report.zero('overlapping refreshes of one grant', idp.overlappingRefreshes);
    report.zero('expired access tokens used', idp.expiredAccessTokenUses);
    report.zero('revoked access tokens used', idp.revokedAccessTokenUses);
    report.zero('tokens handed out with less validity than asked', load.shortTokens);
    report.zero('tokens refused by the identity provider', load.usesRejected + load.useErrors);
    const counts = await stack.statusCounts();
    report.check('nothing lost: every connection active', counts.active === stack.users.length, JSON.stringify(counts));
    const problems = await stack.sweepTokens();
    report.check('every user gets a working token', problems.length === 0, problems.slice(0, 5).join('; '));
    const gauge = metricValue(await stack.metrics(replicas[0]), 'atlassian_token_refresh_oldest_due_seconds');
    report.check('no refresh overdue (/metrics oldest due under two intervals)', gauge < 2 * TIMING.refreshIntervalSeconds, `${gauge} s`);
  },
};

async function liveness(replica: Replica): Promise<number> {
  try {
    const response = await request(`${replica.url}/health/live`, { timeoutMs: 5_000 });
    await response.body?.cancel();
    return response.status;
  } catch {
    return 0;
  }
}
