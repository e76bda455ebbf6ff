import { describe, expect, it, jest } from '@jest/globals';
import { Logger } from '@nestjs/common';
import type { Clock } from '../common/clock.js';
import { FLOOD_REFUSALS_PER_SECOND, MAX_PACED, PACE_MIN_MS, PACE_SPREAD_MS, RefusalPacer } from './refusal-pacer.js';

/** A pacer on a clock the test moves, whose pauses last until the test ends them. */
class HeldPacer extends RefusalPacer {
  readonly pauses: { ms: number; end: () => void }[] = [];

  protected override wait(ms: number): Promise<void> {
    return new Promise((end) => this.pauses.push({ ms, end }));
  }
}

function pacer(): { pacer: HeldPacer; advance: (ms: number) => void } {
  let now = Date.parse('2026-03-02T09:00:00.000Z');
  const clock: Clock = { now: () => new Date(now) };
  return { pacer: new HeldPacer(clock), advance: (ms) => (now += ms) };
}

describe('RefusalPacer', () => {
  jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);

  it('answers a trickle of refusals at once', () => {
    const { pacer: paced, advance } = pacer();
    for (let second = 0; second < 5; second++) {
      for (let i = 0; i < FLOOD_REFUSALS_PER_SECOND; i++) expect(paced.pauseFor()).toBe(0);
      advance(1_000);
    }
  });

  it('pauses every refusal past the flood threshold of its second by 0.5–1.5 s, spread over that range', () => {
    const { pacer: paced, advance } = pacer();
    for (let i = 0; i < FLOOD_REFUSALS_PER_SECOND; i++) paced.pauseFor();
    const pauses = Array.from({ length: 400 }, () => paced.pauseFor());
    expect(Math.min(...pauses)).toBeGreaterThanOrEqual(PACE_MIN_MS);
    expect(Math.max(...pauses)).toBeLessThan(PACE_MIN_MS + PACE_SPREAD_MS);
    // Evenly spread: every tenth of the range holds about a tenth of the pauses.
    const tenths = Array.from({ length: 10 }, (_, tenth) => pauses.filter((ms) => Math.floor((ms - PACE_MIN_MS) / 100) === tenth).length);
    expect(Math.min(...tenths)).toBeGreaterThanOrEqual(30);

    advance(1_000);
    expect(paced.pauseFor()).toBe(0);
  });

  it('rejects with the refusal after the pause, and answers at once while MAX_PACED refusals wait', async () => {
    const { pacer: paced } = pacer();
    const refusal = new Error('no key');
    for (let i = 0; i < FLOOD_REFUSALS_PER_SECOND; i++) await expect(paced.refuse(refusal)).rejects.toBe(refusal);
    const waiting = Array.from({ length: MAX_PACED }, () => paced.refuse(refusal));
    expect(paced.pauses).toHaveLength(MAX_PACED);
    await expect(paced.refuse(refusal)).rejects.toBe(refusal);
    expect(paced.pauses).toHaveLength(MAX_PACED);

    for (const pause of paced.pauses) pause.end();
    const outcomes = await Promise.allSettled(waiting);
    expect(outcomes.every((outcome) => outcome.status === 'rejected' && outcome.reason === refusal)).toBe(true);
  });
});
