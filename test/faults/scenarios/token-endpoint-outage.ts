import { metricValue } from '../lib/http.js';
import type { Scenario } from '../lib/scenario.js';
import { TIMING } from '../lib/stack.js';
import { delta, eventually, seconds } from '../lib/util.js';

const OUTAGE_SECONDS = 60;
const RATE_LIMITED_SECONDS = 30;
const RETRY_AFTER_SECONDS = 30;
/** SPEC: users have working tokens again within a minute of Atlassian's recovery. */
const RECOVERY_TARGET_MS = 60_000;
/** Long enough to measure a service that waits out each connection's backoff (capped at 5 minutes) instead. */
const RECOVERY_TIMEOUT_MS = 330_000;
/** "Well under one call a second per replica" while the endpoint is out. */
const MAX_OUTAGE_CALLS_PER_REPLICA_SECOND = 0.5;

/**
 * Scenario 4: Atlassian's token endpoint answers 503 for a minute, then 429 with a Retry-After of 30 s for 30 s (the
 * sandbox's fault plans by time). The replicas notice the outage and stop retrying each connection, probe it a few times
 * a minute (waiting out Retry-After), nobody is asked to re-consent, and once it answers again every connection is
 * `active` within a minute, each with a `connection.recovered` webhook.
 */
export const tokenEndpointOutage: Scenario = {
  id: '4-outage',
  title: 'token endpoint 503 for 60 s, then 429 with Retry-After 30 s for 30 s',
  async run(report, stack) {
    await stack.waitHealthy();
    const connections = stack.users.length;
    const replicas = stack.inService().length;
    const before = await stack.sandbox.stats();
    const startedAt = Date.now();
    stack.load.beginWindow();
    await stack.sandbox.addFaults({ status: 503, seconds: OUTAGE_SECONDS });
    await stack.sandbox.addFaults({ status: 429, retryAfterSeconds: RETRY_AFTER_SECONDS, seconds: RATE_LIMITED_SECONDS });

    const peak = { failing: 0, reauth: 0, failingGauge: 0, outageGauge: 0 };
    const sample = async () => {
      const counts = await stack.statusCounts();
      peak.failing = Math.max(peak.failing, counts.refresh_failing);
      peak.reauth = Math.max(peak.reauth, counts.reauth_required);
      const metrics = await Promise.all(stack.inService().map((replica) => stack.metrics(replica)));
      peak.failingGauge = Math.max(peak.failingGauge, metricValue(metrics[0], 'atlassian_connections', { status: 'refresh_failing' }));
      const out = metrics.reduce((sum, samples) => sum + metricValue(samples, 'atlassian_token_endpoint_outage'), 0);
      peak.outageGauge = Math.max(peak.outageGauge, out);
    };
    const faultsLeft = async () => {
      await sample();
      return stack.sandbox.stats();
    };

    // The plans end on the sandbox's clock: the 503 minute when one plan is left, the 429 phase when none is.
    const timeout = { timeoutMs: (OUTAGE_SECONDS + RATE_LIMITED_SECONDS + 30) * 1000, intervalMs: 250 };
    const afterOutage = await eventually('the 503 minute over', faultsLeft, (s) => s.pendingFaults <= 1, timeout);
    const outageEndedAt = Date.now();
    const afterFaults = await eventually('the 429 phase over', faultsLeft, (s) => s.pendingFaults === 0, timeout);
    const faultsEndedAt = Date.now();

    const recovered = await report.within(
      `every connection active again within ${RECOVERY_TARGET_MS / 1000} s of the faults ending`,
      async () => {
        await sample();
        return stack.statusCounts();
      },
      (counts) => counts.active === connections,
      { timeoutMs: RECOVERY_TARGET_MS, intervalMs: 1_000 },
    );
    if (!recovered) {
      await eventually(
        'every connection active again (measured past the target)',
        () => stack.statusCounts(),
        (counts) => counts.active === connections,
        { timeoutMs: RECOVERY_TIMEOUT_MS - RECOVERY_TARGET_MS, intervalMs: 2_000 },
      ).catch(() => undefined);
    }
    report.figure('all active again after the faults ended', `${seconds(Date.now() - faultsEndedAt)} s`);
    const userIds = new Set(stack.users.map((u) => u.userId));
    await report.within(
      'a signed connection.recovered webhook for every connection',
      () =>
        Promise.resolve(
          new Set(
            stack.receiver
              .of('connection.recovered')
              .filter((e) => e.receivedAt >= startedAt)
              .map((e) => e.userId),
          ),
        ),
      (seen) => [...userIds].every((id) => seen.has(id)),
      { timeoutMs: 60_000, intervalMs: 1_000 },
    );

    const outageSeconds = (outageEndedAt - startedAt) / 1000;
    const outageCalls = delta(afterOutage.tokenCalls, before.tokenCalls).refresh_token;
    const perReplicaRate = outageCalls / outageSeconds / replicas;
    const rateLimitedCalls = delta(afterFaults.tokenCalls, afterOutage.tokenCalls).refresh_token;
    const probes = await stack.metricSum('atlassian_token_endpoint_probes_total');
    const idp = delta(await stack.sandbox.stats(), before);
    const load = stack.load.endWindow();
    report.figure(
      'token calls during the 503 minute',
      `${outageCalls} in ${seconds(outageEndedAt - startedAt)} s = ${perReplicaRate.toFixed(2)}/s per replica ` +
        `(${replicas} replicas, ${connections} connections; retrying every cycle would be ${connections / TIMING.refreshIntervalSeconds}/s)`,
    );
    report.figure(
      `token calls during the 429 phase (Retry-After ${RETRY_AFTER_SECONDS} s)`,
      `${rateLimitedCalls} in ${seconds(faultsEndedAt - outageEndedAt)} s`,
    );
    report.figure('probes (all replicas)', probes);
    report.figure('refresh_failing at peak (database / /metrics)', `${peak.failing} / ${peak.failingGauge}`);
    report.figure('replicas taking the endpoint to be out at peak', peak.outageGauge);
    report.figure('refreshes answered during the 503 minute', delta(afterOutage, before).refreshes);
    report.figure('client calls', `${load.tokenCalls}: ${load.tokens} tokens, ${load.unavailable} answered 503 atlassian_unavailable`);

    report.check('every connection went refresh_failing', peak.failing === connections, `peak ${peak.failing}`);
    report.check('/metrics showed the failing connections', peak.failingGauge > 0, `peak ${peak.failingGauge}`);
    report.check('/metrics showed the outage on every replica', peak.outageGauge === replicas, `peak ${peak.outageGauge}`);
    report.zero('refreshes that got through during the 503 minute', delta(afterOutage, before).refreshes);
    report.check(
      `token calls during the 503 minute under ${MAX_OUTAGE_CALLS_PER_REPLICA_SECOND}/s per replica`,
      perReplicaRate < MAX_OUTAGE_CALLS_PER_REPLICA_SECOND,
      `${perReplicaRate.toFixed(2)}/s`,
    );
    report.check(
      `Retry-After honoured in the 429 phase (at most one probe per replica per ${RETRY_AFTER_SECONDS} s)`,
      rateLimitedCalls <= replicas * Math.ceil(RATE_LIMITED_SECONDS / RETRY_AFTER_SECONDS + 1),
      `${rateLimitedCalls} calls`,
    );
    report.zero('connections marked reauth_required', peak.reauth);
    report.zero('refresh tokens presented twice', idp.reuseWithinLeeway + idp.reuseAfterLeeway);
    report.zero('grants revoked', idp.grantsRevoked);
    report.zero('overlapping refreshes of one grant', idp.overlappingRefreshes);
    report.zero('expired access tokens used', idp.expiredAccessTokenUses);
    report.zero('revoked access tokens used', idp.revokedAccessTokenUses);
    report.zero('client calls answered with an error other than 503', load.tokenErrors + load.reauthRequired);
    report.zero('503 answers without Retry-After', load.unavailableWithoutRetryAfter);
    report.zero('tokens handed out with less validity than asked', load.shortTokens);
    report.zero('tokens refused by the identity provider', load.usesRejected + load.useErrors);
    report.zero('webhooks with a bad signature', stack.receiver.badSignatures);
    if (load.samples.length > 0) report.log(`  client errors: ${load.samples.join('; ')}`);
  },
};
