import { describe, expect, it } from '@jest/globals';
import { extensionAt, extensionDue, leaseMsFor, nextPassAt, subscriptionKey } from './jira-webhook.policy.js';

const DAY = 86_400_000;
const now = new Date('2026-03-02T09:40:00.000Z');
const at = (ms: number) => new Date(now.getTime() + ms);

describe('the Jira webhook extension schedule', () => {
  it('extends a registration once less than the lead remains, and not before', () => {
    expect(extensionDue(at(11 * DAY), now, 10 * DAY)).toBe(false);
    expect(extensionDue(at(10 * DAY - 1), now, 10 * DAY)).toBe(true);
    expect(extensionDue(null, now, 10 * DAY)).toBe(true);
    expect(extensionAt(at(30 * DAY), now, 10 * DAY)).toEqual(at(20 * DAY));
  });

  it('with a lifetime shorter than the lead, extends halfway to the expiry rather than at once or too late', () => {
    expect(extensionAt(at(120_000), now, 10 * DAY)).toEqual(at(60_000));
    expect(extensionAt(at(500), now, 10 * DAY)).toEqual(at(1_000));
  });

  it('looks again at the soonest of the next reconciliation and the next extension', () => {
    const base = { now, extendBeforeMs: 10 * DAY, reconcileIntervalMs: 6 * 3600_000 };
    expect(nextPassAt({ ...base, expiries: [] })).toEqual(at(6 * 3600_000));
    expect(nextPassAt({ ...base, expiries: [at(30 * DAY), at(10 * DAY + 3600_000)] })).toEqual(at(3600_000));
  });

  it('after a failure, backs off with jitter and honours Retry-After, but never past an extension that is due sooner', () => {
    const base = { now, extendBeforeMs: 10 * DAY, reconcileIntervalMs: 6 * 3600_000 };
    expect(nextPassAt({ ...base, expiries: [], failure: { consecutiveFailures: 1, random: 0.5 } })).toEqual(at(5_000));
    expect(nextPassAt({ ...base, expiries: [], failure: { consecutiveFailures: 3, random: 1 } })).toEqual(at(40_000));
    expect(nextPassAt({ ...base, expiries: [], failure: { consecutiveFailures: 1, random: 0, retryAfterMs: 120_000 } })).toEqual(
      at(120_000),
    );
    expect(nextPassAt({ ...base, expiries: [at(90_000)], failure: { consecutiveFailures: 1, random: 0, retryAfterMs: 120_000 } })).toEqual(
      at(45_000),
    );
  });

  it('leases a pass for five minutes, or a third of a short extension lead, never under 30 s', () => {
    expect(leaseMsFor(10 * DAY)).toBe(300_000);
    expect(leaseMsFor(120_000)).toBe(40_000);
    expect(leaseMsFor(60_000)).toBe(30_000);
  });

  it('treats subscriptions that differ only in order or spacing as the same registration', () => {
    expect(subscriptionKey({ events: ['b', 'a'], jqlFilter: ' project = A ', fieldIdsFilter: ['y', 'x'] })).toBe(
      subscriptionKey({ events: ['a', 'b'], jqlFilter: 'project = A', fieldIdsFilter: ['x', 'y'] }),
    );
    expect(subscriptionKey({ events: ['a'], jqlFilter: 'project = A' })).not.toBe(
      subscriptionKey({ events: ['a'], jqlFilter: 'project = B' }),
    );
  });
});
