import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { isApiPath } from '../../src/api/api-routes.js';
import { startTestApp, TEST_API_KEY, type TestApp } from '../utils/app.js';
import { rawRequest, type RawAnswer, type RawRequest } from '../utils/raw-http.js';
import { ROUTES, routeName, samplePath, type RouteEntry, type RouteKind } from '../utils/routes.js';

/**
 * The inputs of an outside probe, sent to every route of the service (test/utils/routes.ts lists them: a route added
 * there is probed here without more). Each answer must be a refusal with a fitting status, in the API's error shape and
 * with its headers where the path is the API's, never a 5xx; the service must keep answering throughout.
 */

/** A status, one of several, or any answer below 500 (where the route may simply ignore the input). */
type Expected = number | readonly number[] | 'answered';

interface Probe {
  readonly name: string;
  /** The request for a route, or null where the input does not apply to it. */
  readonly request: (route: RouteEntry) => RawRequest | null;
  /** What each kind of route answers. */
  readonly answers: (route: RouteEntry) => Expected;
}

/** The API's code for each refusal status the table expects on an API path. */
const API_CODES: Record<number, readonly string[]> = {
  400: ['invalid_request'],
  401: ['unauthorized'],
  404: ['not_found', 'connection_not_found'],
  413: ['invalid_request'],
  415: ['invalid_request'],
  431: ['invalid_request'],
};

const AUTHORIZATION = ['Authorization', `Bearer ${TEST_API_KEY}`] as const;
const JSON_TYPE = ['Content-Type', 'application/json'] as const;

function byKind(expected: Partial<Record<RouteKind, Expected>> & { readonly other: Expected }): (route: RouteEntry) => Expected {
  return (route) => expected[route.kind] ?? expected.other;
}

/**
 * What a route answers to a body it reads; a route that passes bodies on unread (the proxy) answers as to any call, and
 * one that reads a body only once its JWT is verified (the receiver) refuses an unsigned one whatever it holds.
 */
function toBody(expected: (route: RouteEntry) => Expected): (route: RouteEntry) => Expected {
  return (route) => (route.body === 'forwarded' ? 'answered' : route.body === 'signed' ? 401 : expected(route));
}

const hasParameters = (route: RouteEntry) => route.pattern.includes('/:');
/** `/` has no segment to spell differently. */
const isRoot = (route: RouteEntry) => route.pattern === '/';

/** The route's sample path with its first parameter's value replaced by `value` (sent as written). */
function withParameter(route: RouteEntry, value: string): string {
  let replaced = false;
  const pattern = route.pattern.replace(/:\w+/, () => {
    replaced = true;
    return '\u0000';
  });
  if (!replaced) throw new Error(`${routeName(route)} has no parameter`);
  return samplePath(pattern).replace(encodeURIComponent('\u0000'), value);
}

/** A request with a body, where the method may carry one (every one but HEAD). */
function withBody(route: RouteEntry, body: string | Buffer, type: string): RawRequest | null {
  if (route.method === 'HEAD') return null;
  return { method: route.method, path: samplePath(route.pattern), headers: [AUTHORIZATION, ['Content-Type', type]], body };
}

const send = (route: RouteEntry, path: string, headers: readonly (readonly [string, string])[] = [AUTHORIZATION]): RawRequest => ({
  method: route.method,
  path,
  headers,
});

const deepArrays = `${'['.repeat(50_000)}${']'.repeat(50_000)}`;
const deepObjects = `${'{"a":'.repeat(16_000)}1${'}'.repeat(16_000)}`;
const pollution = '{"__proto__":{"polluted":true},"constructor":{"prototype":{"polluted":true}},"minValiditySeconds":60}';
const hugeJson = JSON.stringify({ padding: 'x'.repeat(1024 * 1024) });

const PROBES: readonly Probe[] = [
  {
    name: 'the path in capitals',
    request: (route) => (isRoot(route) ? null : send(route, samplePath(route.pattern).toUpperCase())),
    answers: () => 404,
  },
  {
    name: 'the path with a trailing slash',
    request: (route) => send(route, `${samplePath(route.pattern)}/`),
    answers: () => 404,
  },
  {
    name: 'the first segment percent-encoded',
    request: (route) =>
      isRoot(route)
        ? null
        : send(
            route,
            samplePath(route.pattern).replace(/^\/(.)/, (_, c: string) => `/%${c.charCodeAt(0).toString(16)}`),
          ),
    answers: () => 404,
  },
  {
    name: '".." segments in the path',
    request: (route) => (isRoot(route) ? null : send(route, samplePath(route.pattern).replace(/^(\/[^/]+)/, '$1/..$1'))),
    answers: () => 404,
  },
  {
    name: 'an encoded "../" in a parameter',
    request: (route) =>
      hasParameters(route)
        ? send(route, withParameter(route, '..%2F..%2Fv1%2Fconnections'))
        : send(route, `${samplePath(route.pattern)}/..%2F`),
    answers: (route) => (!hasParameters(route) ? 404 : route.kind === 'api' ? 400 : 'answered'),
  },
  {
    name: 'a NUL byte (%00) in a parameter',
    request: (route) =>
      hasParameters(route) ? send(route, withParameter(route, 'user%00')) : send(route, `${samplePath(route.pattern)}%00`),
    answers: (route) => (!hasParameters(route) ? 404 : route.kind === 'api' ? 400 : 'answered'),
  },
  {
    name: 'a broken percent-encoding in a parameter',
    request: (route) => (hasParameters(route) ? send(route, withParameter(route, '%E0%A4%A')) : null),
    answers: () => 400,
  },
  {
    name: 'an id of 129 characters',
    request: (route) => (hasParameters(route) ? send(route, withParameter(route, 'u'.repeat(129))) : null),
    answers: byKind({ api: 400, other: 'answered' }),
  },
  {
    name: 'an id of 10,000 characters',
    request: (route) => (hasParameters(route) ? send(route, withParameter(route, 'u'.repeat(10_000))) : null),
    answers: byKind({ api: 400, other: 'answered' }),
  },
  {
    name: 'an address over 16 KB',
    request: (route) => send(route, `${samplePath(route.pattern)}?padding=${'p'.repeat(17 * 1024)}`),
    answers: () => 431,
  },
  {
    name: 'two Authorization headers',
    request: (route) => send(route, samplePath(route.pattern), [AUTHORIZATION, ['Authorization', 'Bearer another-key-0123456789']]),
    answers: byKind({ api: 400, other: 'answered' }),
  },
  {
    name: 'two different Content-Length headers',
    request: (route) => ({
      method: route.method,
      path: samplePath(route.pattern),
      headers: [AUTHORIZATION, JSON_TYPE, ['Content-Length', '2'], ['Content-Length', '3']],
      body: '{}',
    }),
    answers: () => 400,
  },
  {
    name: 'a header over 16 KB',
    request: (route) => send(route, samplePath(route.pattern), [AUTHORIZATION, ['X-Padding', 'p'.repeat(17 * 1024)]]),
    answers: () => 431,
  },
  {
    name: '100 KB of nested arrays',
    request: (route) => withBody(route, deepArrays, 'application/json'),
    answers: toBody(() => 400),
  },
  {
    name: '100 KB of nested objects',
    request: (route) => withBody(route, deepObjects, 'application/json'),
    answers: toBody(() => 400),
  },
  {
    name: '__proto__ and constructor keys in a JSON body',
    request: (route) => withBody(route, pollution, 'application/json'),
    answers: toBody((route) => (route.kind === 'api' && route.body === 'json' ? 400 : 'answered')),
  },
  {
    name: '__proto__ and constructor keys in the query',
    request: (route) => send(route, `${samplePath(route.pattern)}?__proto__[polluted]=1&constructor[prototype][polluted]=1`),
    // The query parser drops keys that name a prototype: each route answers as to its bare path.
    answers: () => 'answered',
  },
  {
    name: 'JSON sent as text/plain',
    request: (route) => withBody(route, '{"minValiditySeconds":60}', 'text/plain'),
    answers: toBody(byKind({ api: 415, other: 'answered' })),
  },
  {
    name: 'a form body',
    request: (route) => withBody(route, 'minValiditySeconds=60&forceRefresh=true', 'application/x-www-form-urlencoded'),
    answers: toBody(byKind({ api: 415, other: 'answered' })),
  },
  {
    name: 'malformed JSON',
    request: (route) => withBody(route, '{"minValiditySeconds":', 'application/json'),
    answers: toBody(() => 400),
  },
  {
    name: 'JSON in a charset the service does not read',
    request: (route) => withBody(route, Buffer.from('{"a":"\u00e9"}', 'latin1'), 'application/json; charset=iso-8859-1'),
    answers: toBody(() => 415),
  },
  {
    name: 'a 1 MB JSON body',
    request: (route) => withBody(route, hugeJson, 'application/json'),
    answers: (route) => (route.body === 'forwarded' ? 'answered' : 413),
  },
];

function check(route: RouteEntry, request: RawRequest, answer: RawAnswer, expected: Expected): string | null {
  const allowed = expected === 'answered' ? null : typeof expected === 'number' ? [expected] : expected;
  if (answer.status >= 500 || (allowed && !allowed.includes(answer.status))) return `HTTP ${answer.status}, expected ${String(expected)}`;
  if (!isApiPath(request.path) || answer.status < 400 || route.method === 'HEAD') return null;
  if (answer.headers['cache-control'] !== 'no-store') return `HTTP ${answer.status} without Cache-Control: no-store`;
  let body: { error?: { code?: unknown; message?: unknown } };
  try {
    body = JSON.parse(answer.body) as typeof body;
  } catch {
    return `HTTP ${answer.status} with a body that is not JSON: ${answer.body.slice(0, 100)}`;
  }
  const codes = API_CODES[answer.status] ?? [];
  const shaped = typeof body.error?.message === 'string' && codes.includes(String(body.error.code)) && Object.keys(body).length === 1;
  return shaped
    ? null
    : `HTTP ${answer.status} with ${answer.body.slice(0, 200)}, expected { error: { code: ${codes.join(' | ')}, message } }`;
}

describe('hostile input, to every route', () => {
  let app: TestApp;
  let port: number;

  beforeAll(async () => {
    app = await startTestApp();
    port = Number(new URL(app.baseUrl).port);
  }, 60_000);
  afterAll(() => app?.close());

  it.each(ROUTES.map((route) => [routeName(route), route] as const))('%s', async (_, route) => {
    const failures: string[] = [];
    for (const probe of PROBES) {
      const request = probe.request(route);
      if (!request) continue;
      const answer = await rawRequest(port, request).catch((error: unknown) => error as Error);
      const failure = answer instanceof Error ? answer.message : check(route, request, answer, probe.answers(route));
      if (failure) failures.push(`${probe.name}: ${failure}`);
    }
    expect(failures).toEqual([]);
    expect((await rawRequest(port, { method: 'GET', path: '/health/live' })).status).toBe(200);
  });

  it('keeps answering, and nothing reached the prototypes', async () => {
    const answer = await rawRequest(port, { method: 'GET', path: '/v1/connections', headers: [AUTHORIZATION] });
    expect(answer.status).toBe(200);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.prototype).not.toHaveProperty('polluted');
  });
});
