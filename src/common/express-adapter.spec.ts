import { describe, expect, it } from '@jest/globals';
import { RequestMethod } from '@nestjs/common';
import { AppExpressAdapter } from './express-adapter.js';

interface Layer {
  route?: { path: string; stack: unknown[] };
}

function layersAfter(register: (adapter: AppExpressAdapter) => void): Layer[] {
  const adapter = new AppExpressAdapter();
  const before = (adapter.getInstance().router.stack as Layer[]).length;
  register(adapter);
  return (adapter.getInstance().router.stack as Layer[]).slice(before);
}

describe('AppExpressAdapter', () => {
  it('mounts middleware for every method of every path as one plain layer', () => {
    const layers = layersAfter((adapter) => {
      adapter.createMiddlewareFactory(RequestMethod.ALL)('{/*splat}', () => undefined);
      adapter.createMiddlewareFactory(RequestMethod.ALL)('/{*path}', () => undefined);
    });
    expect(layers).toHaveLength(2);
    expect(layers.every((layer) => layer.route === undefined)).toBe(true);
  });

  it('mounts other middleware as Nest does', () => {
    const layers = layersAfter((adapter) => {
      adapter.createMiddlewareFactory(RequestMethod.ALL)('/v1/{*path}', () => undefined);
      adapter.createMiddlewareFactory(RequestMethod.GET)('{/*splat}', () => undefined);
    });
    expect(layers.map((layer) => layer.route?.path)).toEqual(['/v1/{*path}', '{/*splat}']);
    // Express 5's app.all: the function once per HTTP method.
    expect(layers[0].route!.stack.length).toBeGreaterThan(30);
  });
});
