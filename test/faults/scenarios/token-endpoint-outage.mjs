import { metricValue } from '../lib/http.mjs';
import { TIMING } from '../lib/stack.mjs';
import { delta, eventually, seconds, sleep } from '../lib/util.mjs';

const OUTAGE_MS = 60_000;
const RATE_LIMITED_MS = 20_000;
const RETRY_AFTER_SECONDS = 10;
/** The refresh job's first backoff step (REFRESH_POLICY.backoffBaseMs): no connection retries sooner on average. */
const BACKOFF_BASE_SECONDS = 10;
/** The backoff's cap (5 min) and a margin: by then every connection has had its next try. */
const RECOVERY_TIMEOUT_MS = 330_000;

/**
 * Scenario 4: Atlassian's token endpoint answers 503 for a minute, then 429 with Retry-After. Connections turn
 * `refresh_failing`, the calls stay few (backoff with jitter, Retry-After honoured), nobody is asked to re-consent,
 * and every connection comes back `active` (with a `connection.recovered` webhook) when the endpoint does.
 */
export const tokenEndpointOutage = {
  id: '4-outage',
  title: 'token endpoint 503 for 60 s, then 429 with Retry-After',
  async run(report, stack) {
    await stack.waitHealthy();
    const connections = stack.users.length;
    // Both phases go in by time, before the baseline is read: every call from then on gets the 503 for a minute, then
    // the 429 for 20 s, however many calls come (a switch counting calls let some through when a burst outran its top-ups).
    await stack.sandbox.addFaults({ status: 503, seconds: OUTAGE_MS / 1000 });
    await stack.sandbox.addFaults({ status: 429, retryAfterSeconds: RETRY_AFTER_SECONDS, seconds: RATE_LIMITED_MS / 1000 });
    const before = await stack.sandbox.stats();
    const startedAt = Date.now();
    stack.load.beginWindow();
    const peak = { failing: 0, reauth: 0, failingGauge: 0 };
    const sample = async () => {
      const counts = await stack.statusCounts();
      peak.failing = Math.max(peak.failing, counts.refresh_failing);
      peak.reauth = Math.max(peak.reauth, counts.reauth_required);
      const gauge = metricValue(await stack.metrics(stack.inService()[0]), 'atlassian_connections', { status: 'refresh_failing' });
      peak.failingGauge = Math.max(peak.failingGauge, gauge);
    };

    await sampleFor(OUTAGE_MS, sample);
    const afterOutage = await stack.sandbox.stats();
    await sampleFor(RATE_LIMITED_MS, sample);
    const [limited] = await stack.query(
      `SELECT count(*)::int AS limited,
         count(*) FILTER (WHERE due_at < last_error_at + make_interval(secs => $1))::int AS early
       FROM connections WHERE status = 'refresh_failing' AND last_error LIKE '%rate limiting%'`,
      [RETRY_AFTER_SECONDS],
    );
    await eventually(
      'the queued faults served',
      () => stack.sandbox.stats(),
      (s) => s.pendingFaults === 0,
      { timeoutMs: 90_000 },
    );
    const faultsEndedAt = Date.now();
    const afterFaults = await stack.sandbox.stats();

    const recovered = await report.within(
      'every connection active again',
      async () => {
        await sample();
        return stack.statusCounts();
      },
      (counts) => counts.active === connections,
      { timeoutMs: RECOVERY_TIMEOUT_MS, intervalMs: 2_000 },
    );
    if (recovered) report.figure('all active again after the faults ended', `${seconds(Date.now() - faultsEndedAt)} s (backoff cap 5 min)`);
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

    const outage = delta(afterOutage.tokenCalls, before.tokenCalls).refresh_token;
    const rateLimited = delta(afterFaults.tokenCalls, afterOutage.tokenCalls).refresh_token;
    const outageRate = outage / (OUTAGE_MS / 1000);
    const unthrottledRate = connections / TIMING.refreshIntervalSeconds;
    const idp = delta(await stack.sandbox.stats(), before);
    const load = stack.load.endWindow();
    report.figure(
      'token calls during the 503 minute',
      `${outage} = ${outageRate.toFixed(1)}/s for ${connections} connections (${((outage / connections) * (60_000 / OUTAGE_MS)).toFixed(1)} per connection per minute; retrying every cycle would be ${unthrottledRate}/s)`,
    );
    report.figure('token calls during the 429 phase and its tail', `${rateLimited} in ${seconds(faultsEndedAt - startedAt - OUTAGE_MS)} s`);
    report.figure('refresh_failing at peak (database / /metrics)', `${peak.failing} / ${peak.failingGauge}`);
    report.figure(
      'connections rate limited at the end of the 429 phase (retried sooner than Retry-After)',
      `${limited.limited} (${limited.early})`,
    );
    report.figure('refreshes answered during the 503 minute', delta(afterOutage, before).refreshes);
    report.figure('client calls', `${load.tokenCalls}: ${load.tokens} tokens, ${load.unavailable} answered 503 atlassian_unavailable`);

    report.check('every connection went refresh_failing', peak.failing === connections, `peak ${peak.failing}`);
    report.check('/metrics showed the failing connections', peak.failingGauge > 0, `peak ${peak.failingGauge}`);
    report.zero('refreshes that got through during the 503 minute', delta(afterOutage, before).refreshes);
    report.check(
      `token calls bounded by the backoff (at most one per connection per ${BACKOFF_BASE_SECONDS} s)`,
      outageRate <= connections / BACKOFF_BASE_SECONDS,
      `${outageRate.toFixed(1)}/s`,
    );
    report.check('rate-limited connections wait at least Retry-After', limited.limited > 0 && limited.early === 0, JSON.stringify(limited));
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

/** Runs `onSecond` each second for `ms`. */
async function sampleFor(ms, onSecond) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    await onSecond();
    await sleep(1_000);
  }
}
