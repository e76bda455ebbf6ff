import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { Express } from 'express';
import { startTestApp, type TestApp } from '../utils/app.js';

interface Operation {
  summary?: string;
  security?: Record<string, unknown>[];
  responses: Record<string, { content?: Record<string, { schema?: { $ref?: string } }> }>;
  parameters?: { name: string; in: string }[];
  requestBody?: unknown;
}

interface OpenApiDocument {
  openapi: string;
  paths: Record<string, Record<string, Operation>>;
  components: { securitySchemes: Record<string, { type: string; scheme: string }>; schemas: Record<string, unknown> };
}

/** The routes Express actually serves under /v1, as `METHOD /path/{param}`. */
function mappedApiRoutes(app: TestApp): string[] {
  const express = app.app.getHttpAdapter().getInstance() as Express & {
    router: { stack: { route?: { path: string; methods: Record<string, boolean> } }[] };
  };
  const routes: string[] = [];
  for (const layer of express.router.stack) {
    if (!layer.route?.path.startsWith('/v1/')) continue;
    const path = layer.route.path.replace(/[:*](\w+)/g, '{$1}');
    for (const method of Object.keys(layer.route.methods)) routes.push(`${method.toUpperCase()} ${path}`);
  }
  return routes.sort();
}

describe('OpenAPI at /docs-json and Swagger UI at /docs', () => {
  let app: TestApp;
  let document: OpenApiDocument;

  beforeAll(async () => {
    app = await startTestApp();
    const response = await fetch(`${app.baseUrl}/docs-json`);
    expect(response.status).toBe(200);
    document = (await response.json()) as OpenApiDocument;
  }, 60_000);
  afterAll(() => app?.close());

  function operations(): [string, Operation][] {
    return Object.entries(document.paths).flatMap(([path, methods]) =>
      Object.entries(methods).map(([method, operation]) => [`${method.toUpperCase()} ${path}`, operation] as [string, Operation]),
    );
  }

  it('documents exactly the /v1 routes the application serves, and nothing else', () => {
    const documented = operations()
      .map(([route]) => route)
      .sort();
    expect(documented).toEqual(mappedApiRoutes(app));
    expect(documented).toEqual(
      [
        'POST /v1/users/{userId}/connect',
        'GET /v1/users/{userId}/connection',
        'DELETE /v1/users/{userId}/connection',
        'GET /v1/users/{userId}/accessible-resources',
        'POST /v1/users/{userId}/access-token',
        'GET /v1/connections',
        'GET /v1/users/{userId}/sites/{cloudId}/myself',
        'GET /v1/users/{userId}/jira-webhooks',
        'PUT /v1/users/{userId}/jira-webhooks',
        'DELETE /v1/users/{userId}/jira-webhooks',
        ...['GET', 'POST', 'PUT', 'PATCH', 'DELETE'].map((method) => `${method} /v1/users/{userId}/proxy/{product}/{cloudId}/{path}`),
      ].sort(),
    );
  });

  it('gives every route a summary, and writes no Markdown backticks anywhere (Swagger UI shows them as they are)', async () => {
    for (const [route, operation] of operations()) {
      expect({ route, summary: typeof operation.summary === 'string' && operation.summary.length > 0 }).toEqual({ route, summary: true });
    }
    const text = await (await fetch(`${app.baseUrl}/docs-json`)).text();
    expect(text.match(/.{0,40}`.{0,40}/g) ?? []).toEqual([]);
  });

  it('requires the bearer API key on every route and documents its success and error answers', () => {
    expect(document.components.securitySchemes.bearer).toMatchObject({ type: 'http', scheme: 'bearer' });
    for (const [route, operation] of operations()) {
      expect({ route, security: operation.security }).toEqual({ route, security: [{ bearer: [] }] });
      const statuses = Object.keys(operation.responses);
      expect({ route, success: statuses.some((s) => /^2\d\d$/.test(s)) }).toEqual({ route, success: true });
      for (const status of ['401', '429', '500']) {
        const schema = operation.responses[status]?.content?.['application/json']?.schema;
        expect({ route, status, schema }).toEqual({ route, status, schema: { $ref: '#/components/schemas/ErrorBodyDto' } });
      }
    }
  });

  it('documents the routes’ own errors, parameters and bodies', () => {
    const responses = (route: string, method: string) => Object.keys(document.paths[route][method].responses).sort();
    expect(responses('/v1/users/{userId}/accessible-resources', 'get')).toEqual(
      ['200', '400', '401', '404', '409', '429', '500', '502', '503', '403'].sort(),
    );
    expect(responses('/v1/users/{userId}/connection', 'delete')).toEqual(['204', '400', '401', '404', '429', '500', '503'].sort());
    expect(responses('/v1/users/{userId}/access-token', 'post')).toEqual(expect.arrayContaining(['200', '404', '409', '503']));
    expect(responses('/v1/users/{userId}/connect', 'post')).toEqual(expect.arrayContaining(['201', '400']));
    expect(document.paths['/v1/connections'].get.parameters?.map((p) => `${p.in}:${p.name}`).sort()).toEqual([
      'query:cursor',
      'query:limit',
      'query:reconsentDueBefore',
      'query:status',
    ]);
    expect(document.paths['/v1/users/{userId}/access-token'].post.requestBody).toBeDefined();
    for (const schema of [
      'ConnectionDto',
      'ConnectionPageDto',
      'AccessibleResourcesDto',
      'AccessTokenResponseDto',
      'ConnectLinkDto',
      'ErrorBodyDto',
    ]) {
      expect(document.components.schemas).toHaveProperty(schema);
    }
  });

  it('serves Swagger UI from this service only, under its own content security policy', async () => {
    const response = await fetch(`${app.baseUrl}/docs`);
    expect(response.status).toBe(200);
    const html = await response.text();
    expect(html).toContain('swagger-ui');
    expect(html).not.toMatch(/(src|href)="https?:/);
    const csp = response.headers.get('content-security-policy')!;
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("frame-ancestors 'none'");
    for (const asset of ['swagger-ui-bundle.js', 'swagger-ui-init.js', 'swagger-ui.css']) {
      const served = await fetch(`${app.baseUrl}/docs/${asset}`);
      expect(served.status).toBe(200);
      expect((await served.text()).length).toBeGreaterThan(0);
    }
  });

  it('leaves the browser routes their own strict policy', async () => {
    const response = await fetch(`${app.baseUrl}/auth/atlassian/start?ticket=unknown-ticket-0123456789`, { redirect: 'manual' });
    await response.text();
    const csp = response.headers.get('content-security-policy')!;
    expect(csp).toContain("default-src 'none'");
    expect(csp).not.toContain("'unsafe-inline'");
  });
});
