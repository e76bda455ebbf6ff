import type { Stop } from '../lib/processes.js';
import type { Scenario } from '../lib/scenario.js';
import { delta, eventually, seconds } from '../lib/util.js';

/** Slow enough that the replica is in the middle of a cycle when it is told to stop. */
const BUSY_TOKEN_MS = 1_500;
const EXIT_WITHIN_MS = 10_000;

/**
 * Scenario 6: SIGTERM, as an orchestrator sends it, while the replica has refresh calls open and more claimed.
 * It must finish or hand back every refresh, exit 0 in time, and leave no lease and no rotated-but-unsaved token.
 */
export const gracefulShutdown: Scenario = {
  id: '6-sigterm',
  title: 'SIGTERM during a busy refresh cycle',
  async run(report, stack) {
    await stack.waitHealthy();
    const target = stack.replicas[2];
    const pid = target.process.pid;
    const before = await stack.sandbox.stats();
    stack.load.beginWindow();

    let stop: Stop;
    await stack.sandbox.setTokenLatency(BUSY_TOKEN_MS);
    try {
      const busy = await eventually(
        'the replica holding leases with token calls open',
        async () => ({ leases: await stack.leasesHeldBy(pid), inFlight: (await stack.sandbox.stats()).refreshesInFlight }),
        (v) => v.leases >= 3 && v.inFlight >= 1,
        { timeoutMs: 30_000, intervalMs: 100 },
      );
      report.figure('at SIGTERM', `replica ${target.index} (pid ${pid}) holding ${busy.leases} leases, ${busy.inFlight} token calls open`);
      // The load balancer takes it out of rotation as the orchestrator signals it.
      target.draining = true;
      stop = await target.process.stop('SIGTERM', EXIT_WITHIN_MS + 10_000);
    } finally {
      await stack.sandbox.setTokenLatency(0);
    }
    const stoppedAt = new Date();
    report.figure('exit', `code ${stop.code}, signal ${stop.signal}, after ${seconds(stop.ms)} s`);
    report.check('exit code 0', stop.code === 0 && stop.signal === null && !stop.forced, JSON.stringify(stop));
    report.check(`exited within ${EXIT_WITHIN_MS / 1000} s`, stop.ms < EXIT_WITHIN_MS, `${seconds(stop.ms)} s`);
    const leftBehind = await stack.leasesHeldBy(pid);
    report.zero('leases left held by the stopped replica', leftBehind);

    // A refresh token rotated but not stored would show up as a reuse when its connection is refreshed next.
    await report.within(
      'every connection refreshed again by the other replicas',
      () =>
        stack.query<{ waiting: number }>(
          `SELECT count(*) FILTER (WHERE status <> 'active' OR last_refreshed_at IS NULL OR last_refreshed_at <= $1)::int AS waiting FROM connections`,
          [stoppedAt],
        ),
      ([row]) => row.waiting === 0,
      { timeoutMs: 60_000, intervalMs: 1_000 },
    );
    const idp = delta(await stack.sandbox.stats(), before);
    const load = stack.load.endWindow();
    report.figure('refreshes since SIGTERM began (identity provider)', idp.refreshes);
    report.zero('refresh tokens presented twice within the leeway', idp.reuseWithinLeeway);
    report.zero('refresh tokens presented twice after the leeway', idp.reuseAfterLeeway);
    report.zero('grants revoked', idp.grantsRevoked);
    report.zero('overlapping refreshes of one grant', idp.overlappingRefreshes);
    report.zero('expired access tokens used', idp.expiredAccessTokenUses);
    report.zero('client calls answered with an error', load.tokenErrors + load.unavailable + load.reauthRequired);
    report.zero('tokens refused by the identity provider', load.usesRejected + load.useErrors);
    if (load.samples.length > 0) report.log(`  client errors: ${load.samples.join('; ')}`);

    await stack.restart(target);
    await stack.waitHealthy();
  },
};
