import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { Express } from 'express';
import { startTestApp, type TestApp } from '../utils/app.js';

interface Layer {
  readonly name: string;
  readonly route?: { readonly path: string; readonly stack: readonly { readonly method?: string }[] };
}

/**
 * AppExpressAdapter leans on how Nest drives its Express adapter: it creates the Express instance through the
 * adapter's constructor, mounts middleware through `createMiddlewareFactory`, and spells `forRoutes('*')` as one of
 * the paths the adapter recognises. A Nest upgrade that changes any of these fails here, on the whole app as it boots.
 */
describe('AppExpressAdapter in the booted app', () => {
  let app: TestApp;
  let express: Express;

  beforeAll(async () => {
    app = await startTestApp();
    express = app.app.getHttpAdapter().getInstance() as Express;
  });
  afterAll(() => app?.close());

  it('routes strictly and case-sensitively', async () => {
    expect(express.enabled('strict routing')).toBe(true);
    expect(express.enabled('case sensitive routing')).toBe(true);
    expect((await fetch(`${app.baseUrl}/health/live`)).status).toBe(200);
    expect((await fetch(`${app.baseUrl}/health/live/`)).status).toBe(404);
    expect((await fetch(`${app.baseUrl}/Health/live`)).status).toBe(404);
  });

  it('mounts the middleware of every path as plain layers, not as a route per HTTP method', () => {
    const layers = express.router.stack as Layer[];
    // Express 5's app.all(path, fn), which Nest uses for middleware otherwise, leaves a route that holds fn once per method.
    const perMethod = layers.filter((layer) => layer.route && new Set(layer.route.stack.map((handler) => handler.method)).size > 1);
    expect(perMethod.map((layer) => layer.route!.path)).toEqual([]);
  });
});
