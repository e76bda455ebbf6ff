import { metricValue } from '../lib/http.js';
import type { Scenario } from '../lib/scenario.js';
import { delta, eventually, seconds } from '../lib/util.js';

/**
 * Scenario 5: one user removes the app at the identity provider. Only that connection turns `reauth_required`, the
 * receiver gets a signed `connection.reauth_required`, and the same userId connects again.
 */
export const grantRevoked: Scenario = {
  id: '5-revoked',
  title: 'one user revokes the app at the identity provider',
  async run(report, stack) {
    await stack.waitHealthy();
    const user = stack.users[7];
    const others = stack.users.filter((u) => u !== user);
    const before = await stack.sandbox.stats();
    const badSignaturesBefore = stack.receiver.badSignatures;
    stack.load.exclude(user.userId);
    stack.load.beginWindow();

    const revokedAt = Date.now();
    report.check('the identity provider revoked the grant', await stack.sandbox.revoke(user.accountId));
    const [event] = await eventually(
      'the connection.reauth_required webhook',
      () => Promise.resolve(stack.receiver.of('connection.reauth_required', user.userId)),
      (events) => events.length > 0,
      { timeoutMs: 45_000, intervalMs: 250 },
    );
    report.figure('signed connection.reauth_required received after', `${seconds(event.receivedAt - revokedAt)} s`);
    report.check(
      'the webhook names the user and carries an id and a time',
      event.userId === user.userId && Boolean(event.id) && !Number.isNaN(Date.parse(event.at)),
    );
    report.check('only that user got a reauth_required webhook', stack.receiver.of('connection.reauth_required').length === 1);

    const refused = await stack.accessToken(stack.inService()[0], user.userId);
    report.check(
      'its access-token answers 409 reauth_required',
      refused.status === 409 && refused.body.error?.code === 'reauth_required',
      `HTTP ${refused.status}`,
    );
    const counts = await stack.statusCounts();
    report.check(
      'only that connection is reauth_required',
      counts.reauth_required === 1 && counts.active === others.length,
      JSON.stringify(counts),
    );
    await report.within(
      '/metrics shows one connection reauth_required',
      () => stack.metrics(stack.inService()[0]),
      (s) => metricValue(s, 'atlassian_connections', { status: 'reauth_required' }) === 1,
      { timeoutMs: 15_000 },
    );
    const problems = await stack.sweepTokens(others);
    report.check(`every other user (${others.length}) still gets a working token`, problems.length === 0, problems.slice(0, 5).join('; '));

    const reconnectedAt = Date.now();
    Object.assign(user, await stack.connect(user));
    report.figure('reconnected through the connect flow in', `${seconds(Date.now() - reconnectedAt)} s`);
    const again = await stack.sweepTokens([user]);
    report.check('after reconnecting, its token works again', again.length === 0, again.join('; '));
    await report.within(
      'the reconnection announced by a signed connection.created webhook',
      () => Promise.resolve(stack.receiver.of('connection.created', user.userId).filter((e) => e.receivedAt >= reconnectedAt)),
      (events) => events.length > 0,
      { timeoutMs: 30_000, intervalMs: 250 },
    );
    stack.load.include(user.userId);

    const idp = delta(await stack.sandbox.stats(), before);
    const load = stack.load.endWindow();
    report.zero('webhooks with a bad signature', stack.receiver.badSignatures - badSignaturesBefore);
    report.check('exactly one grant revoked (this user’s, by the user)', idp.grantsRevoked === 1, `${idp.grantsRevoked}`);
    report.zero('refresh tokens presented twice', idp.reuseWithinLeeway + idp.reuseAfterLeeway);
    report.zero('expired access tokens used', idp.expiredAccessTokenUses);
    report.zero('client calls answered with an error', load.tokenErrors + load.unavailable + load.reauthRequired);
    report.zero('tokens refused by the identity provider', load.usesRejected + load.useErrors);
    if (load.samples.length > 0) report.log(`  client errors: ${load.samples.join('; ')}`);
    await stack.waitHealthy();
  },
};
