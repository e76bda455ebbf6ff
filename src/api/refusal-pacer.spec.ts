import { describe, expect, it, jest } from '@jest/globals';
import { Logger } from '@nestjs/common';
import type { Request, Response } from 'express';
import type { Clock } from '../common/clock.js';
import type { AppConfig } from '../config/app-config.js';
import { ApiKeyGuard } from './api-key.guard.js';
import {
  FLOOD_REFUSALS_PER_SECOND,
  MAX_PACED,
  PACE_MIN_MS,
  PACE_SPREAD_MS,
  paceRequestsWithoutKey,
  RefusalPacer,
  REFUSAL_BURST,
} from './refusal-pacer.js';

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

  it('answers at once refusals that come at up to FLOOD_REFUSALS_PER_SECOND, and bursts of up to REFUSAL_BURST', () => {
    const { pacer: paced, advance } = pacer();
    for (let i = 0; i < REFUSAL_BURST; i++) expect(paced.pauseFor()).toBe(0);
    for (let i = 0; i < FLOOD_REFUSALS_PER_SECOND * 5; i++) {
      advance(1_000 / FLOOD_REFUSALS_PER_SECOND);
      expect(paced.pauseFor()).toBe(0);
    }
    advance(1_000);
    for (let i = 0; i < REFUSAL_BURST; i++) expect(paced.pauseFor()).toBe(0);
    expect(paced.pauseFor()).toBeGreaterThan(0);
  });

  it('pauses every refusal past the burst by 0.5–1.5 s, spread over that range', () => {
    const { pacer: paced, advance } = pacer();
    for (let i = 0; i < REFUSAL_BURST; i++) paced.pauseFor();
    const pauses = Array.from({ length: 400 }, () => paced.pauseFor());
    expect(Math.min(...pauses)).toBeGreaterThanOrEqual(PACE_MIN_MS);
    expect(Math.max(...pauses)).toBeLessThan(PACE_MIN_MS + PACE_SPREAD_MS);
    // Evenly spread: every tenth of the range holds about a tenth of the pauses.
    const tenths = Array.from({ length: 10 }, (_, tenth) => pauses.filter((ms) => Math.floor((ms - PACE_MIN_MS) / 100) === tenth).length);
    expect(Math.min(...tenths)).toBeGreaterThanOrEqual(30);

    advance(1_000);
    expect(paced.pauseFor()).toBe(0);
  });

  it('has no pause for a refusal answered at once, one that ends after the pause for the others, and none while MAX_PACED wait', async () => {
    const { pacer: paced } = pacer();
    for (let i = 0; i < REFUSAL_BURST; i++) expect(paced.pace()).toBeNull();
    const waiting = Array.from({ length: MAX_PACED }, () => paced.pace());
    expect(waiting.every((pause) => pause instanceof Promise)).toBe(true);
    expect(paced.pauses).toHaveLength(MAX_PACED);
    expect(paced.pace()).toBeNull();
    expect(paced.pauses).toHaveLength(MAX_PACED);

    for (const pause of paced.pauses) pause.end();
    await Promise.all(waiting as Promise<void>[]);
    expect(paced.pace()).not.toBeNull();
  });
});

describe('paceRequestsWithoutKey', () => {
  jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
  const KEY = 'the-only-key-0123456789abcdef';

  function request(path: string, authorization?: string): Request {
    const rawHeaders = authorization === undefined ? [] : ['Authorization', authorization];
    return { path, headers: { authorization }, rawHeaders, socket: { destroyed: false } } as unknown as Request;
  }

  function middleware() {
    const { pacer: paced } = pacer();
    const pace = paceRequestsWithoutKey(new ApiKeyGuard({ apiKeys: [KEY] } as unknown as AppConfig), paced);
    const passed: Request[] = [];
    const send = (req: Request) => pace(req, {} as Response, () => passed.push(req));
    return { paced, passed, send };
  }

  it('holds a request without a valid key past the flood threshold until its pause is over, before any other work', async () => {
    const { paced, passed, send } = middleware();
    for (let i = 0; i < REFUSAL_BURST; i++) send(request('/v1/connections', 'Bearer wrong'));
    expect(passed).toHaveLength(REFUSAL_BURST);

    const held = request('/v1/connections');
    send(held);
    expect(passed).not.toContain(held);
    paced.pauses[0].end();
    await new Promise(setImmediate);
    expect(passed).toContain(held);
  });

  it('drops a held request whose client has gone, never holds one with a valid key, and leaves other paths alone', async () => {
    const { paced, passed, send } = middleware();
    for (let i = 0; i < REFUSAL_BURST; i++) send(request('/v1/connections'));

    const gone = request('/v1/connections');
    send(gone);
    (gone.socket as { destroyed: boolean }).destroyed = true;
    paced.pauses[0].end();
    await new Promise(setImmediate);
    expect(passed).not.toContain(gone);

    const keyed = request('/v1/connections', `bearer ${KEY}`);
    const health = request('/health/live');
    send(keyed);
    send(health);
    expect(passed).toEqual(expect.arrayContaining([keyed, health]));
    expect((keyed as Request & { apiKeyFingerprint?: string }).apiKeyFingerprint).toMatch(/^[0-9a-f]{8}$/);
    expect(paced.pauses).toHaveLength(1);
  });
});
