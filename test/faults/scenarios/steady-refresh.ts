import { metricValue, type MetricSample } from '../lib/http.js';
import type { Scenario } from '../lib/scenario.js';
import { TIMING, type Stack } from '../lib/stack.js';
import { delta, seconds, sleep } from '../lib/util.js';

/**
 * Scenario 1: the normal day, compressed. Every replica refreshes, clients take tokens from every replica and use
 * them at once; the identity provider counts what must never happen.
 */
export const steadyRefresh: Scenario = {
  id: '1-steady',
  title: 'steady refresh cycles on every replica, tokens used under client load',
  async run(report, stack, { steadySeconds }) {
    await stack.waitHealthy();
    const replicas = stack.inService();
    const refreshedBefore = await Promise.all(replicas.map(async (r) => refreshedOn(await stack.metrics(r))));
    const versionsBefore = await versions(stack);
    const before = await stack.sandbox.stats();
    stack.load.beginWindow();
    let maxLagSeconds = 0;
    const end = Date.now() + steadySeconds * 1000;
    while (Date.now() < end) {
      const samples = await stack.metrics(replicas[0]);
      maxLagSeconds = Math.max(maxLagSeconds, metricValue(samples, 'atlassian_token_refresh_oldest_due_seconds'));
      await sleep(1_000);
    }
    const load = stack.load.endWindow();
    const idp = delta(await stack.sandbox.stats(), before);
    const versionsAfter = await versions(stack);
    // Every stored refresh bumps its connection's version: how often each connection was refreshed in the window.
    const perConnection = [...versionsAfter].map(([id, version]) => version - (versionsBefore.get(id) ?? version));
    const stored = perConnection.reduce((a, b) => a + b, 0);
    const refreshedAfter = await Promise.all(replicas.map(async (r) => refreshedOn(await stack.metrics(r))));
    const perReplica = refreshedAfter.map((n, i) => n - refreshedBefore[i]);

    const connections = stack.users.length;
    const cycleSeconds = TIMING.accessTokenTtlSeconds - TIMING.refreshLeadSeconds;
    // Fewer refreshes than this and some token outlived its 20 s; more than this and some cycle refreshed twice.
    const fewest = Math.floor(steadySeconds / TIMING.accessTokenTtlSeconds);
    const most = Math.ceil(steadySeconds / cycleSeconds) + 1;
    report.figure('duration', `${steadySeconds} s, ${replicas.length} replicas, ${connections} connections`);
    report.figure('refreshes answered (identity provider) / stored (database)', `${idp.refreshes} / ${stored}`);
    report.figure(
      'refreshes per connection',
      `${Math.min(...perConnection)} to ${Math.max(...perConnection)}, mean ${(stored / connections).toFixed(1)} (due every ${cycleSeconds} s)`,
    );
    report.figure('refreshes per replica', perReplica.join(' / '));
    report.figure('client calls', `${load.tokenCalls} access-token calls, ${load.uses} token uses`);
    report.figure('max refresh lag (oldest due, sampled each second)', `${maxLagSeconds.toFixed(1)} s`);
    report.figure('least validity left on a token handed out', `${seconds(load.minValidityLeftMs)} s`);
    report.figure(
      'overlaps / reuses within / after leeway / revocations',
      `${idp.overlappingRefreshes} / ${idp.reuseWithinLeeway} / ${idp.reuseAfterLeeway} / ${idp.grantsRevoked}`,
    );

    report.zero('expired access tokens used', idp.expiredAccessTokenUses);
    report.zero('revoked access tokens used', idp.revokedAccessTokenUses);
    report.zero('refresh tokens presented twice within the leeway', idp.reuseWithinLeeway);
    report.zero('refresh tokens presented twice after the leeway', idp.reuseAfterLeeway);
    report.zero('overlapping refreshes of one grant', idp.overlappingRefreshes);
    report.zero('grants revoked', idp.grantsRevoked);
    report.check(
      `every connection refreshed on schedule, once per cycle (${fewest} to ${most} times)`,
      perConnection.length === connections && perConnection.every((n) => n >= fewest && n <= most),
      `from ${Math.min(...perConnection)} to ${Math.max(...perConnection)} times`,
    );
    report.check(
      'every replica took part in refreshing',
      perReplica.every((n) => n > 0),
      perReplica.join(' / '),
    );
    report.check('no refresh waited as long as the lead', maxLagSeconds < TIMING.refreshLeadSeconds, `${maxLagSeconds} s`);
    report.check('the clients made calls', load.tokenCalls > 0 && load.uses > 0);
    report.zero('client calls answered with an error', load.tokenErrors + load.unavailable + load.reauthRequired);
    report.zero('tokens handed out with less validity than asked', load.shortTokens);
    report.zero('tokens refused by the identity provider', load.usesRejected + load.useErrors);
    if (load.samples.length > 0) report.log(`  client errors: ${load.samples.join('; ')}`);

    const counts = await stack.statusCounts();
    report.check('every connection active at the end', counts.active === connections, JSON.stringify(counts));
    await report.within(
      '/metrics shows every connection active',
      () => stack.metrics(replicas[0]),
      (samples) => metricValue(samples, 'atlassian_connections', { status: 'active' }) === connections,
      { timeoutMs: 15_000 },
    );
  },
};

function refreshedOn(samples: MetricSample[]): number {
  return metricValue(samples, 'atlassian_token_refreshes_total', { outcome: 'refreshed' });
}

async function versions(stack: Stack): Promise<Map<string, number>> {
  return new Map(
    (await stack.query<{ id: string; version: number }>(`SELECT id, version FROM connections`)).map((row) => [row.id, row.version]),
  );
}
