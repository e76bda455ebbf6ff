import { performance } from 'node:perf_hooks';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { FLOOD_REFUSALS_PER_SECOND, PACE_MIN_MS } from '../../src/api/refusal-pacer.js';
import { callApi } from '../utils/api.js';
import { startTestApp, type TestApp } from '../utils/app.js';

/** `count` requests without a key at once; answers each one's status and how long it took. */
async function flood(app: TestApp, count: number): Promise<{ status: number; ms: number }[]> {
  return Promise.all(
    Array.from({ length: count }, async () => {
      const started = performance.now();
      const response = await callApi(app, 'GET', '/v1/connections', { key: null });
      await response.arrayBuffer();
      return { status: response.status, ms: performance.now() - started };
    }),
  );
}

describe('a flood of requests without a valid key', () => {
  let app: TestApp;

  beforeAll(async () => {
    app = await startTestApp({ captureLogs: true, env: { LOG_LEVEL: 'info' } });
  }, 60_000);
  afterAll(() => app?.close());

  it('is refused, the refusals past the flood threshold after a pause, while a caller with a key is served', async () => {
    const refusing = flood(app, FLOOD_REFUSALS_PER_SECOND * 3);
    const withKey = await callApi(app, 'GET', '/v1/connections');
    const refused = await refusing;

    expect(withKey.status).toBe(200);
    expect(refused.every(({ status }) => status === 401)).toBe(true);
    expect(app.logs()).toContain('requests a second without a valid API key: refusing them after a pause');
    expect(refused.filter(({ ms }) => ms >= PACE_MIN_MS).length).toBeGreaterThanOrEqual(FLOOD_REFUSALS_PER_SECOND);
  });

  it('times the refusals in the metrics from their arrival, pause included, as their clients waited', async () => {
    const metrics = await (await fetch(`${app.baseUrl}/metrics`)).text();
    const series = (name: string) =>
      Number(
        new RegExp(`^http_request_duration_seconds_${name}\\{[^}]*route="/v1/connections"[^}]*status_code="401"[^}]*\\} (\\S+)$`, 'm').exec(
          metrics,
        )?.[1],
      );
    expect(series('count')).toBe(FLOOD_REFUSALS_PER_SECOND * 3);
    expect(series('sum')).toBeGreaterThanOrEqual((FLOOD_REFUSALS_PER_SECOND * PACE_MIN_MS) / 1_000);
  });

  it('logs the first refusal as a request and only counts the others', () => {
    const refusalLines = app.logLines().filter((line) => (line.res as { statusCode?: number } | undefined)?.statusCode === 401);
    expect(refusalLines.length).toBeGreaterThanOrEqual(1);
    expect(refusalLines.length).toBeLessThanOrEqual(2);
  });
});
