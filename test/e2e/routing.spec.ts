import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { isApiPath } from '../../src/api/api-routes.js';
import { startTestApp, TEST_API_KEY, type TestApp } from '../utils/app.js';
import { ROUTES, routeName, samplePath, servedRoutes, type RouteEntry } from '../utils/routes.js';

/** One path, one route: the other spellings of a route's path, each of which must reach no route. */
function otherSpellings(pattern: string): string[] {
  const segments = samplePath(pattern).split('/');
  // Parameters and wildcards are the caller's values; a wildcard's value has slashes, so nothing after it is static.
  const wildcard = pattern.split('/').findIndex((segment) => segment.startsWith('*'));
  const isStatic = pattern.split('/').map((segment, i) => segment !== '' && !segment.startsWith(':') && (wildcard < 0 || i < wildcard));
  const spell = (change: (segment: string, index: number) => string) => segments.map((s, i) => (isStatic[i] ? change(s, i) : s)).join('/');
  const toggled = (segment: string) =>
    (segment[0] === segment[0].toUpperCase() ? segment[0].toLowerCase() : segment[0].toUpperCase()) + segment.slice(1);
  const spellings = [
    spell((segment) => segment.toUpperCase()),
    // Each static segment alone in another case: the prefix (`/V1/users/…`) and every segment after it.
    ...isStatic.flatMap((isStaticSegment, index) =>
      isStaticSegment ? [spell((segment, i) => (i === index ? toggled(segment) : segment))] : [],
    ),
    // A wildcard's value may end with a slash: the proxy passes `…/myself/` on as sent.
    ...(wildcard < 0 ? [`${samplePath(pattern)}/`] : []),
  ];
  return [...new Set(spellings)].filter((path) => /[A-Za-z]/.test(path) && path !== samplePath(pattern));
}

async function send(app: TestApp, route: RouteEntry, path: string, key: string | null): Promise<Response> {
  const headers: Record<string, string> = {};
  if (key !== null) headers.Authorization = `Bearer ${key}`;
  if (route.body === 'json') headers['Content-Type'] = 'application/json';
  return fetch(`${app.baseUrl}${path}`, {
    method: route.method,
    headers,
    body: route.body === 'json' ? '{}' : undefined,
    redirect: 'manual',
  });
}

describe('routing: every path is the API with all its guards, or not the API', () => {
  let app: TestApp;

  beforeAll(async () => {
    app = await startTestApp();
  }, 60_000);
  afterAll(() => app?.close());

  it('has a table entry for every route it serves, and the API path test agrees with it', () => {
    expect(servedRoutes(app)).toEqual(ROUTES.map(routeName).sort());
    for (const route of ROUTES)
      expect({ route: routeName(route), api: isApiPath(route.pattern) }).toEqual({ route: routeName(route), api: route.kind === 'api' });
  });

  it.each(ROUTES.map((route) => [routeName(route), route] as const))(
    '%s: upper, mixed-case and trailing-slash spellings reach no route',
    async (_, route) => {
      const served = new Set(ROUTES.map((r) => `${r.method} ${samplePath(r.pattern)}`));
      for (const path of otherSpellings(route.pattern)) {
        if (served.has(`${route.method} ${path}`)) continue;
        const response = await send(app, route, path, TEST_API_KEY);
        const seen = { path, status: response.status };
        expect(seen).toEqual({ path, status: 404 });
        if (isApiPath(path)) {
          expect({ path, cacheControl: response.headers.get('cache-control'), limit: response.headers.get('x-ratelimit-limit') }).toEqual({
            path,
            cacheControl: 'no-store',
            limit: null,
          });
          if (route.method !== 'HEAD') expect(await response.json()).toEqual({ error: { code: 'not_found', message: expect.any(String) } });
        } else {
          await response.arrayBuffer();
        }
      }
    },
  );

  it.each(ROUTES.filter((route) => route.kind === 'api').map((route) => [routeName(route), route] as const))(
    '%s: its one spelling is guarded (401 without a key, counted with one)',
    async (_, route) => {
      const path = samplePath(route.pattern);
      const refused = await send(app, route, path, null);
      expect(refused.status).toBe(401);
      expect(refused.headers.get('cache-control')).toBe('no-store');
      expect(await refused.json()).toEqual({ error: { code: 'unauthorized', message: expect.any(String) } });
      const allowed = await send(app, route, path, TEST_API_KEY);
      await allowed.arrayBuffer();
      expect(allowed.headers.get('x-ratelimit-limit')).not.toBeNull();
      expect(allowed.headers.get('cache-control')).toBe('no-store');
    },
  );

  it.each(ROUTES.filter((route) => route.kind === 'receiver').map((route) => [routeName(route), route] as const))(
    '%s: its one spelling refuses a call without a JWT from Atlassian, even one with an API key',
    async (_, route) => {
      const path = samplePath(route.pattern);
      for (const key of [null, TEST_API_KEY]) {
        const refused = await send(app, route, path, key);
        expect(refused.status).toBe(401);
        expect(refused.headers.get('cache-control')).toBe('no-store');
        expect(refused.headers.get('x-ratelimit-limit')).toBeNull();
        expect(await refused.json()).toEqual({ error: { code: 'unauthorized', message: expect.any(String) } });
      }
    },
  );
});
