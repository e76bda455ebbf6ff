import { beforeEach, describe, expect, it, jest } from '@jest/globals';
import { Logger } from '@nestjs/common';
import { Registry } from 'prom-client';
import { OUTAGE_POLICY, TokenEndpointOutage } from './outage.js';
import { REFRESH_POLICY } from './refresh.policy.js';

const START = Date.parse('2026-03-02T09:00:00.000Z');
const at = (ms: number) => new Date(START + ms);

async function metric(registry: Registry, name: string, labels: Record<string, string> = {}): Promise<number> {
  const found = (await registry.getMetricsAsJSON()).find((m) => m.name === name);
  return found?.values.find((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l))?.value ?? 0;
}

describe('TokenEndpointOutage', () => {
  let registry: Registry;
  let outage: TokenEndpointOutage;
  const warn = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
  jest.spyOn(Logger.prototype, 'log').mockImplementation(() => undefined);

  beforeEach(() => {
    registry = new Registry();
    outage = new TokenEndpointOutage(registry);
    warn.mockClear();
  });

  /** `count` transient failures of as many connections (or of one), at `ms`. */
  function fail(count: number, ms = 0, connections = count): void {
    for (let i = 0; i < count; i++) outage.failed(`connection-${i % connections}`, at(ms), undefined, false);
  }

  describe('detection', () => {
    it('takes the endpoint to be out when most of the last refreshes failed, for several connections', async () => {
      for (let i = 0; i < 20; i++) outage.answered(at(0), false);
      fail(7);
      expect(outage.active).toBe(false);
      outage.failed('connection-7', at(0), undefined, false);
      expect(outage.active).toBe(true);
      expect(outage.nextProbeAt).toEqual(at(OUTAGE_POLICY.probeIntervalMs));
      expect(await metric(registry, 'atlassian_token_endpoint_outage')).toBe(1);
      expect(warn).toHaveBeenCalledTimes(1);
      expect(warn.mock.calls[0][0]).toContain('failed 8 of the last 10 refreshes, for 8 connections');
    });

    it('does not for one connection failing again and again: that is its own problem', () => {
      fail(50, 0, 4);
      expect(outage.active).toBe(false);
    });

    it('does not when failures are not most of the refreshes', () => {
      for (let i = 0; i < 100; i++) {
        outage.failed(`connection-${i}`, at(i * 100), undefined, false);
        outage.answered(at(i * 100), false);
      }
      expect(outage.active).toBe(false);
    });

    it('forgets refreshes older than two minutes', () => {
      for (const id of ['a', 'b', 'c', 'd']) outage.failed(id, at(0), undefined, false);
      for (const id of ['e', 'f', 'g', 'h']) outage.failed(id, at(OUTAGE_POLICY.sampleMaxAgeMs + 1), undefined, false);
      expect(outage.active).toBe(false);
      outage.failed('i', at(OUTAGE_POLICY.sampleMaxAgeMs + 1), undefined, false);
      expect(outage.active).toBe(true);
    });

    it('honours a Retry-After longer than the probe interval, up to the cap', () => {
      fail(7);
      outage.failed('connection-7', at(0), 90_000, false);
      expect(outage.nextProbeAt).toEqual(at(90_000));
      const other = new TokenEndpointOutage(new Registry());
      for (let i = 0; i < 8; i++) other.failed(`c-${i}`, at(0), 24 * 3600_000, false);
      expect(other.nextProbeAt).toEqual(at(REFRESH_POLICY.maxRetryAfterMs));
    });
  });

  describe('probing', () => {
    beforeEach(() => fail(8));

    it('lets a probe go every interval while it keeps failing', async () => {
      expect(outage.probeDue(at(OUTAGE_POLICY.probeIntervalMs - 1))).toBe(false);
      expect(outage.probeDue(at(OUTAGE_POLICY.probeIntervalMs))).toBe(true);
      outage.failed('connection-0', at(OUTAGE_POLICY.probeIntervalMs), undefined, true);
      expect(outage.nextProbeAt).toEqual(at(2 * OUTAGE_POLICY.probeIntervalMs));
      expect(outage.probeDue(at(2 * OUTAGE_POLICY.probeIntervalMs - 1))).toBe(false);
      expect(await metric(registry, 'atlassian_token_endpoint_probes_total', { outcome: 'failing' })).toBe(1);
    });

    it("waits out a failed probe's Retry-After, and a straggler's", () => {
      outage.failed('connection-0', at(20_000), 45_000, true);
      expect(outage.nextProbeAt).toEqual(at(65_000));
      // A refresh claimed before the outage was noticed comes back with a longer Retry-After: it holds too.
      outage.failed('connection-1', at(21_000), 60_000, false);
      expect(outage.nextProbeAt).toEqual(at(81_000));
    });

    it('ends with the first answer, then asks once for the overdue connections to be brought forward', async () => {
      expect(outage.catchUpDue).toBe(false);
      outage.answered(at(20_000), true);
      expect(outage.active).toBe(false);
      expect(outage.nextProbeAt).toBeNull();
      expect(outage.catchUpDue).toBe(true);
      outage.caughtUp();
      expect(outage.catchUpDue).toBe(false);
      expect(await metric(registry, 'atlassian_token_endpoint_outage')).toBe(0);
      expect(await metric(registry, 'atlassian_token_endpoint_probes_total', { outcome: 'answered' })).toBe(1);
    });

    it('starts counting afresh after an outage', () => {
      outage.answered(at(20_000), true);
      // The failures before the outage would make these four the eighth to twelfth of twelve failures in a row.
      fail(4, 21_000);
      expect(outage.active).toBe(false);
    });

    it('hands out the stretches of due times to mark as waiting, each once it is overdue by the grace', () => {
      const grace = OUTAGE_POLICY.markOverdueAfterMs;
      expect(outage.overdueToMark(at(grace + 1_000))).toEqual({ after: null, upTo: at(1_000) });
      outage.overdueMarked(at(1_000));
      expect(outage.overdueToMark(at(grace + 1_000))).toBeNull();
      expect(outage.overdueToMark(at(grace + 2_000))).toEqual({ after: at(1_000), upTo: at(2_000) });
      expect(outage.waitingReason()).toContain(`since ${at(0).toISOString()}`);
      outage.answered(at(3_000), true);
      expect(outage.overdueToMark(at(grace + 4_000))).toBeNull();
    });
  });
});
