import { metricValue } from '../lib/http.js';
import type { Scenario } from '../lib/scenario.js';
import { delta, eventually, seconds } from '../lib/util.js';

/** Slow enough that a replica always has refresh calls open when it is killed. */
const SLOW_TOKEN_MS = 3_000;
/** Atlassian's reuse leeway (the sandbox's default): recovery must come inside it. */
const LEEWAY_MS = 600_000;
const RECOVERED = 'atlassian_token_refresh_leases_recovered_total';

/**
 * Scenario 2: `kill -9` of a replica while its refresh calls are open at a slow token endpoint. The identity provider
 * rotates those refresh tokens anyway and nobody stores the answers; the killed replica's leases run out and the
 * connections are recovered (restarted replica or survivors) by presenting the old refresh token inside the leeway.
 */
export const replicaCrash: Scenario = {
  id: '2-crash',
  title: 'kill -9 of a replica with refreshes in flight',
  async run(report, stack) {
    await stack.waitHealthy();
    const victim = stack.replicas[1];
    const survivors = stack.inService().filter((r) => r !== victim);
    const recoveredBefore = new Map(
      await Promise.all(survivors.map(async (r): Promise<[number, number]> => [r.index, metricValue(await stack.metrics(r), RECOVERED)])),
    );
    const before = await stack.sandbox.stats();
    stack.load.beginWindow();

    const pid = victim.process.pid;
    let killedAt: number;
    let orphans: string[];
    await stack.sandbox.setTokenLatency(SLOW_TOKEN_MS);
    try {
      const busy = await eventually(
        'the victim holding leases with token calls open',
        async () => ({ leases: await stack.leasesHeldBy(pid), inFlight: (await stack.sandbox.stats()).refreshesInFlight }),
        (v) => v.leases >= 3 && v.inFlight >= 1,
        { timeoutMs: 30_000, intervalMs: 100 },
      );
      // The load balancer's health check notices at once; requests already open on the victim fail.
      victim.draining = true;
      victim.process.signal('SIGKILL');
      killedAt = Date.now();
      await victim.process.exited;
      orphans = (
        await stack.query<{ id: string }>(`SELECT id FROM connections WHERE lease_id IS NOT NULL AND lease_owner LIKE $1`, [`%/${pid}/%`])
      ).map((row) => row.id);
      report.figure(
        'killed replica',
        `replica ${victim.index} (pid ${pid}) holding ${busy.leases} leases, ${busy.inFlight} token calls open`,
      );
    } finally {
      await stack.sandbox.setTokenLatency(0);
    }
    report.figure('leases left behind by the kill', orphans.length);
    await stack.restart(victim);
    report.figure('replica restarted, ready after', `${seconds(Date.now() - killedAt)} s`);

    await eventually(
      'the orphaned leases taken over',
      () => stack.leasesHeldBy(pid),
      (n) => n === 0,
      { timeoutMs: 150_000, intervalMs: 1_000 },
    );
    const [recovery] = await eventually(
      'the orphaned connections refreshed again',
      () =>
        stack.query<{ done: number; last: Date | null }>(
          `SELECT count(*) FILTER (WHERE status = 'active' AND last_refreshed_at > $2)::int AS done, max(last_refreshed_at) AS last
           FROM connections WHERE id = ANY($1::uuid[])`,
          [orphans, new Date(killedAt)],
        ),
      ([row]) => row.done === orphans.length,
      { timeoutMs: 60_000, intervalMs: 1_000 },
    );
    const recoveredIn = recovery.last ? recovery.last.getTime() - killedAt : 0;
    await stack.waitHealthy();

    const recovered = (
      await Promise.all(
        stack.inService().map(async (r) => metricValue(await stack.metrics(r), RECOVERED) - (recoveredBefore.get(r.index) ?? 0)),
      )
    ).reduce((a, b) => a + b, 0);
    const idp = delta(await stack.sandbox.stats(), before);
    const load = stack.load.endWindow();
    report.figure(
      'every orphaned connection refreshed again after',
      `${seconds(recoveredIn)} s (lease 90 s, leeway ${LEEWAY_MS / 60_000} min)`,
    );
    report.figure(`${RECOVERED} (sum over replicas)`, recovered);
    report.figure('refresh tokens presented again inside the leeway (answers lost in the crash)', idp.reuseWithinLeeway);
    report.figure(
      'client calls',
      `${load.tokenCalls} (${load.unavailable} answered 503 with Retry-After while a connection's lease was orphaned, ${load.unreachable} to the killed replica)`,
    );

    report.check('the crash left refreshes behind', orphans.length > 0);
    report.check(
      'the crash lost at least one answer the identity provider had given',
      idp.reuseWithinLeeway >= 1,
      `${idp.reuseWithinLeeway}`,
    );
    report.check(
      'each recovery presented an orphaned refresh token once',
      idp.reuseWithinLeeway <= orphans.length,
      `${idp.reuseWithinLeeway} reuses, ${orphans.length} orphans`,
    );
    report.check(
      'every orphaned lease counted as recovered in /metrics',
      recovered === orphans.length,
      `${recovered} recovered, ${orphans.length} orphaned`,
    );
    report.check('recovered inside the leeway', recoveredIn < LEEWAY_MS, `${seconds(recoveredIn)} s`);
    report.zero('refresh tokens presented after the leeway', idp.reuseAfterLeeway);
    report.zero('grants revoked', idp.grantsRevoked);
    report.zero('overlapping refreshes of one grant', idp.overlappingRefreshes);
    report.zero('expired access tokens used', idp.expiredAccessTokenUses);
    report.zero('revoked access tokens used', idp.revokedAccessTokenUses);
    report.zero('client calls answered with an error', load.tokenErrors + load.reauthRequired);
    report.zero('503 answers without Retry-After', load.unavailableWithoutRetryAfter);
    report.zero('tokens refused by the identity provider', load.usesRejected + load.useErrors);
    if (load.samples.length > 0) report.log(`  client errors: ${load.samples.join('; ')}`);
    const counts = await stack.statusCounts();
    report.check('every connection active, none reauth_required', counts.active === stack.users.length, JSON.stringify(counts));
  },
};
