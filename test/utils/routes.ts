import type { TestApp } from './app.js';

/** Who may call a route, which decides what a refusal of it looks like. */
export type RouteKind =
  /** `/v1`: an API key, the API's headers and `{ error: { code, message } }` for every error. */
  | 'api'
  /** Health, metrics, docs: no key, their own answers. */
  | 'open'
  /** `/auth`: a browser's, answered with pages. */
  | 'browser'
  /** `/sandbox`: the stand-in for Atlassian, answered as Atlassian answers. */
  | 'sandbox'
  /** `/operator`: the CLI's questions, answered only on the local operator socket (404 on the HTTP port). */
  | 'operator'
  /** `/atlassian`: Atlassian's deliveries, each proven by a JWT signed with the client secret (401 for anything else). */
  | 'receiver';

export interface RouteEntry {
  readonly method: 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  /** As Express holds it: `/v1/users/:userId/connection`. */
  readonly pattern: string;
  readonly kind: RouteKind;
  /**
   * Whether the route reads a JSON body, passes any body on unread (the proxy), or reads one only once its JWT is
   * verified (the receiver: anything unsigned is 401 whatever its body, but a body over the limit is 413 first).
   */
  readonly body?: 'json' | 'forwarded' | 'signed';
}

/**
 * Every route the service serves, with what a caller must send. A route added to the application must be added here:
 * `servedRoutes` below and the tests that walk this table check that the two agree, so a new route cannot go untested
 * by them. Routes of Swagger UI (`/docs`, its files) are Swagger's and not listed.
 */
export const ROUTES: readonly RouteEntry[] = [
  { method: 'POST', pattern: '/v1/users/:userId/connect', kind: 'api' },
  { method: 'GET', pattern: '/v1/users/:userId/connection', kind: 'api' },
  { method: 'DELETE', pattern: '/v1/users/:userId/connection', kind: 'api' },
  { method: 'GET', pattern: '/v1/users/:userId/accessible-resources', kind: 'api' },
  { method: 'POST', pattern: '/v1/users/:userId/access-token', kind: 'api', body: 'json' },
  { method: 'GET', pattern: '/v1/connections', kind: 'api' },
  { method: 'GET', pattern: '/v1/users/:userId/sites/:cloudId/myself', kind: 'api' },
  { method: 'GET', pattern: '/v1/users/:userId/proxy/:product/:cloudId/*path', kind: 'api', body: 'forwarded' },
  { method: 'POST', pattern: '/v1/users/:userId/proxy/:product/:cloudId/*path', kind: 'api', body: 'forwarded' },
  { method: 'PUT', pattern: '/v1/users/:userId/proxy/:product/:cloudId/*path', kind: 'api', body: 'forwarded' },
  { method: 'PATCH', pattern: '/v1/users/:userId/proxy/:product/:cloudId/*path', kind: 'api', body: 'forwarded' },
  { method: 'DELETE', pattern: '/v1/users/:userId/proxy/:product/:cloudId/*path', kind: 'api', body: 'forwarded' },
  { method: 'GET', pattern: '/v1/users/:userId/jira-webhooks', kind: 'api' },
  { method: 'PUT', pattern: '/v1/users/:userId/jira-webhooks', kind: 'api', body: 'json' },
  { method: 'DELETE', pattern: '/v1/users/:userId/jira-webhooks', kind: 'api' },
  { method: 'POST', pattern: '/atlassian/jira-webhooks', kind: 'receiver', body: 'signed' },
  { method: 'GET', pattern: '/', kind: 'open' },
  { method: 'GET', pattern: '/health/live', kind: 'open' },
  { method: 'GET', pattern: '/health/ready', kind: 'open' },
  { method: 'GET', pattern: '/metrics', kind: 'open' },
  { method: 'GET', pattern: '/auth/atlassian/start', kind: 'browser' },
  { method: 'HEAD', pattern: '/auth/atlassian/start', kind: 'browser' },
  { method: 'GET', pattern: '/auth/atlassian/callback', kind: 'browser' },
  { method: 'HEAD', pattern: '/auth/atlassian/callback', kind: 'browser' },
  { method: 'GET', pattern: '/sandbox/authorize', kind: 'sandbox' },
  { method: 'POST', pattern: '/sandbox/authorize', kind: 'sandbox' },
  { method: 'POST', pattern: '/sandbox/oauth/token', kind: 'sandbox', body: 'json' },
  { method: 'GET', pattern: '/sandbox/oauth/token/accessible-resources', kind: 'sandbox' },
  { method: 'GET', pattern: '/sandbox/me', kind: 'sandbox' },
  { method: 'GET', pattern: '/sandbox/ex/jira/:cloudId/rest/api/3/myself', kind: 'sandbox' },
  { method: 'GET', pattern: '/sandbox/ex/jira/:cloudId/rest/api/:version/issue/:issueIdOrKey', kind: 'sandbox' },
  { method: 'PUT', pattern: '/sandbox/ex/jira/:cloudId/rest/api/:version/issue/:issueIdOrKey', kind: 'sandbox', body: 'json' },
  { method: 'GET', pattern: '/sandbox/ex/jira/:cloudId/rest/api/3/search/jql', kind: 'sandbox' },
  { method: 'POST', pattern: '/sandbox/ex/jira/:cloudId/rest/api/3/search/jql', kind: 'sandbox', body: 'json' },
  { method: 'GET', pattern: '/sandbox/ex/jira/:cloudId/rest/api/3/attachment/content/:id', kind: 'sandbox' },
  { method: 'POST', pattern: '/sandbox/ex/jira/:cloudId/rest/api/3/webhook', kind: 'sandbox', body: 'json' },
  { method: 'GET', pattern: '/sandbox/ex/jira/:cloudId/rest/api/3/webhook', kind: 'sandbox' },
  { method: 'DELETE', pattern: '/sandbox/ex/jira/:cloudId/rest/api/3/webhook', kind: 'sandbox', body: 'json' },
  { method: 'PUT', pattern: '/sandbox/ex/jira/:cloudId/rest/api/3/webhook/refresh', kind: 'sandbox', body: 'json' },
  { method: 'GET', pattern: '/sandbox/ex/confluence/:cloudId/wiki/api/v2/pages/:id', kind: 'sandbox' },
  { method: 'POST', pattern: '/sandbox/_control/faults', kind: 'sandbox', body: 'json' },
  { method: 'POST', pattern: '/sandbox/_control/latency', kind: 'sandbox', body: 'json' },
  { method: 'POST', pattern: '/sandbox/_control/settings', kind: 'sandbox', body: 'json' },
  { method: 'POST', pattern: '/sandbox/_control/reset', kind: 'sandbox' },
  { method: 'POST', pattern: '/sandbox/_control/grants/:accountId/revoke', kind: 'sandbox' },
  { method: 'GET', pattern: '/sandbox/_control/stats', kind: 'sandbox' },
  { method: 'GET', pattern: '/sandbox/_control/api-calls', kind: 'sandbox' },
  { method: 'GET', pattern: '/sandbox/_control/jira-webhooks', kind: 'sandbox' },
  { method: 'POST', pattern: '/sandbox/_control/jira-webhooks/deliveries', kind: 'sandbox', body: 'json' },
  { method: 'POST', pattern: '/sandbox/_control/users', kind: 'sandbox', body: 'json' },
  { method: 'POST', pattern: '/sandbox/_control/authorize', kind: 'sandbox', body: 'json' },
  { method: 'GET', pattern: '/operator/service', kind: 'operator' },
  { method: 'GET', pattern: '/operator/server-time', kind: 'operator' },
  { method: 'GET', pattern: '/operator/migrations', kind: 'operator' },
  { method: 'GET', pattern: '/operator/refresh-status', kind: 'operator' },
  { method: 'GET', pattern: '/operator/webhook-backlog', kind: 'operator' },
  { method: 'GET', pattern: '/operator/oauth-states/:stateHash', kind: 'operator' },
];

/** A valid value for each route parameter, so that a sample path is one the route takes. */
const PARAMETER_SAMPLES: Record<string, string> = {
  userId: 'user-1',
  cloudId: '11111111-2222-4333-8444-555555555555',
  accountId: '712020:0000',
  product: 'jira',
  stateHash: 'a'.repeat(64),
  version: '3',
  issueIdOrKey: 'PROJ-1',
  id: '10000',
};

/** A valid value for each wildcard (`*path`), slashes and all. */
const WILDCARD_SAMPLES: Record<string, string> = {
  path: 'rest/api/3/myself',
};

/** The pattern with every parameter and wildcard filled in: a path the route serves. */
export function samplePath(pattern: string): string {
  const sample = (samples: Record<string, string>, name: string) => {
    const value = samples[name];
    if (value === undefined) throw new Error(`No sample value for the route parameter ${name}: add one to test/utils/routes.ts`);
    return value;
  };
  return pattern
    .replace(/:(\w+)/g, (_, name: string) => encodeURIComponent(sample(PARAMETER_SAMPLES, name)))
    .replace(/\*(\w+)/g, (_, name: string) => sample(WILDCARD_SAMPLES, name));
}

const SWAGGER_ROUTE = /^\/docs(?:[/-]|$)/;

/** The routes Express serves, as `METHOD pattern`, Swagger UI's left out. */
export function servedRoutes(app: TestApp): string[] {
  const express = app.app.getHttpAdapter().getInstance() as {
    router: { stack: { route?: { path: string; methods: Record<string, boolean> } }[] };
  };
  const routes: string[] = [];
  for (const layer of express.router.stack) {
    if (!layer.route || SWAGGER_ROUTE.test(layer.route.path)) continue;
    for (const method of Object.keys(layer.route.methods)) routes.push(`${method.toUpperCase()} ${layer.route.path}`);
  }
  return routes.sort();
}

export function routeName(route: RouteEntry): string {
  return `${route.method} ${route.pattern}`;
}
