import type { IncomingMessage, ServerResponse } from 'node:http';
import { afterEach, describe, expect, it, jest } from '@jest/globals';
import { Logger } from '@nestjs/common';
import { isRefusal, REFUSAL_WINDOW_MS, RefusalLog, sampleRefusals } from './refusal-log.js';

/** A RefusalLog whose window closes when the test says so. */
function sampled(): { log: RefusalLog; closeWindow: () => void; delays: number[] } {
  const pending: (() => void)[] = [];
  const delays: number[] = [];
  const log = new RefusalLog((run, ms) => {
    pending.push(run);
    delays.push(ms);
  });
  return { log, closeWindow: () => pending.shift()?.(), delays };
}

describe('RefusalLog', () => {
  const warn = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
  afterEach(() => {
    warn.mockClear();
  });

  it('lets the first refusal of a window be logged in full and only counts the rest', () => {
    const { log, delays } = sampled();
    expect(log.admit(401)).toBe(true);
    expect(Array.from({ length: 1000 }, () => log.admit(401)).some(Boolean)).toBe(false);
    expect(delays).toEqual([REFUSAL_WINDOW_MS]);
    expect(warn).not.toHaveBeenCalled();
  });

  it('logs the count of the unlogged ones in one line when the window closes, then starts over', () => {
    const { log, closeWindow } = sampled();
    log.admit(401);
    for (let i = 0; i < 3; i++) log.admit(401);
    log.admit(429);
    closeWindow();
    expect(warn).toHaveBeenCalledTimes(1);
    expect(warn.mock.calls[0][0]).toBe('4 more requests were refused in the last 10 s without a log line each (3 × 401, 1 × 429)');
    expect(log.admit(401)).toBe(true);
  });

  it('logs nothing more when a window saw a single refusal', () => {
    const { log, closeWindow } = sampled();
    log.admit(404);
    closeWindow();
    expect(warn).not.toHaveBeenCalled();
  });
});

describe('isRefusal', () => {
  const answered = (statusCode: number, route?: unknown) =>
    isRefusal({ route } as IncomingMessage & { route?: unknown }, { statusCode } as ServerResponse);

  it('is a 401, a 429, or a 404 of a path that is no route', () => {
    expect([answered(401), answered(429), answered(404)]).toEqual([true, true, true]);
  });

  it("is not a route's own answer, a 404 for an unknown connection included", () => {
    expect([answered(200, {}), answered(404, { path: '/v1/users/:userId/connection' }), answered(400), answered(500)]).toEqual([
      false,
      false,
      false,
      false,
    ]);
  });
});

describe('sampleRefusals', () => {
  it("silences the refusals RefusalLog only counts and leaves every other answer's level alone", () => {
    const level = sampleRefusals((_req, res) => (res.statusCode >= 400 ? 'warn' : 'info'), new RefusalLog(() => undefined));
    const answer = (statusCode: number, route?: unknown) =>
      level({ route } as IncomingMessage & { route?: unknown }, { statusCode } as ServerResponse);
    expect([answer(401), answer(401), answer(429), answer(404)]).toEqual(['warn', 'silent', 'silent', 'silent']);
    expect([answer(404, {}), answer(400, {}), answer(200, {})]).toEqual(['warn', 'warn', 'info']);
  });
});
