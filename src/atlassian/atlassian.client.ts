import { Agent as HttpAgent, type IncomingHttpHeaders, type IncomingMessage, request as httpRequest } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { performance } from 'node:perf_hooks';
import { Injectable } from '@nestjs/common';
import { AppConfig } from '../config/app-config.js';
import { AtlassianCallGate, type AnswerHeaders, type GatedCall, type GateRefusal, OpenGate } from './atlassian-call.gate.js';
import { ACCEPTED_ENCODINGS, StreamTransport, type StreamedAnswer } from './atlassian-stream.transport.js';
import { AtlassianError } from './atlassian.errors.js';
import type { AccessibleResource, AtlassianAccount, AtlassianProduct, TokenSet } from './atlassian.types.js';

export interface AtlassianClientOptions {
  /** How long one call to Atlassian may take before it counts as a timeout (for a streamed call: until its answer's head). */
  readonly timeoutMs: number;
  /** How long opening a connection for a streamed call may take. */
  readonly connectTimeoutMs?: number;
}

export const DEFAULT_ATLASSIAN_TIMEOUT_MS = 15_000;
export const DEFAULT_CONNECT_TIMEOUT_MS = 5_000;

/**
 * An idle kept-alive connection is closed after this long, before servers commonly close theirs (5 s and up), so a
 * request is not sent on a socket the other side is closing.
 */
const IDLE_SOCKET_TIMEOUT_MS = 4_000;

interface HttpCall {
  readonly method: string;
  readonly headers: Record<string, string>;
  readonly body?: string;
}

interface HttpAnswer {
  readonly status: number;
  readonly headers: Headers;
  readonly json: unknown;
}

export type { AtlassianProduct } from './atlassian.types.js';

/** One JSON call to a product's REST API on one site, e.g. Jira's `GET /rest/api/3/webhook?startAt=0`. */
export interface ProductRequest {
  readonly method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  /** The path under `/ex/{product}/{cloudId}`, starting with `/`, without a query. */
  readonly path: string;
  readonly query?: Readonly<Record<string, string>>;
  /** Sent as JSON when present. */
  readonly body?: unknown;
}

/** One call to a product REST API whose answer is streamed on as it comes (the proxy). */
export interface ProductStreamRequest {
  readonly method: string;
  /** The path under `/ex/{product}/{cloudId}`, starting with `/`, percent-encoded as it is to be sent. */
  readonly path: string;
  /** The query as it is to be sent, without `?`; empty for none. */
  readonly query: string;
  /** Request headers to send besides the token (the caller decides which of its own may go). */
  readonly headers: Readonly<Record<string, string>>;
  readonly body?: Buffer;
}

export type { StreamedAnswer } from './atlassian-stream.transport.js';

/** A product API's answer as it came, whatever its status: the caller decides what a 400 or a 404 means for it. */
export interface ProductAnswer {
  readonly status: number;
  readonly headers: Headers;
  /** The parsed JSON body; undefined when the body was empty or not JSON. */
  readonly json: unknown;
}

/**
 * The one place that speaks Atlassian's OAuth 2.0 (3LO) and API over HTTP. It sends exactly what Atlassian
 * documents (JSON bodies, the configured redirect_uri byte for byte) and turns every answer into a typed result
 * or an AtlassianError whose kind says whether to retry, re-consent, or fix the configuration.
 * It never retries by itself: a code must not be exchanged twice, and refresh retries belong to the refresh rules.
 */
@Injectable()
export class AtlassianClient {
  private readonly timeoutMs: number;
  /**
   * node:http(s) with keep-alive agents rather than the global fetch: the refresh daemon makes thousands of token
   * calls a second at peak, and fetch's per-call cost made the client its ceiling (docs/benchmarks.md).
   */
  private readonly httpAgent = new HttpAgent({ keepAlive: true, timeout: IDLE_SOCKET_TIMEOUT_MS });
  private readonly httpsAgent = new HttpsAgent({ keepAlive: true, timeout: IDLE_SOCKET_TIMEOUT_MS });
  private readonly stream: StreamTransport;

  constructor(
    private readonly config: AppConfig,
    options?: AtlassianClientOptions,
    /** Consulted around every API call as a user (the rate-limit governor); admits everything by default. */
    private readonly gate: AtlassianCallGate = new OpenGate(),
  ) {
    this.timeoutMs = options?.timeoutMs ?? DEFAULT_ATLASSIAN_TIMEOUT_MS;
    this.stream = new StreamTransport({
      connectTimeoutMs: options?.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
      answerTimeoutMs: this.timeoutMs,
    });
  }

  /** The redirect_uri sent to /authorize and to the code exchange: always this exact string. */
  get redirectUri(): string {
    return this.config.atlassian.callbackUrl;
  }

  exchangeCode(code: string): Promise<TokenSet> {
    return this.tokenRequest({
      grant_type: 'authorization_code',
      client_id: this.config.atlassian.clientId,
      client_secret: this.config.atlassian.clientSecret,
      code,
      redirect_uri: this.redirectUri,
    });
  }

  refresh(refreshToken: string): Promise<TokenSet> {
    return this.tokenRequest({
      grant_type: 'refresh_token',
      client_id: this.config.atlassian.clientId,
      client_secret: this.config.atlassian.clientSecret,
      refresh_token: refreshToken,
    });
  }

  async me(accessToken: string): Promise<AtlassianAccount> {
    const body = await this.apiGet(accessToken, '/me');
    const accountId = stringField(body, 'account_id');
    if (!accountId) throw badResponse('/me answered without an account_id');
    return { accountId, name: stringField(body, 'name'), email: stringField(body, 'email') };
  }

  async accessibleResources(accessToken: string): Promise<AccessibleResource[]> {
    const body = await this.apiGet(accessToken, '/oauth/token/accessible-resources');
    if (!Array.isArray(body)) throw badResponse('accessible-resources did not answer a list');
    return mergeResources(body);
  }

  /** GET a product REST path through the API gateway, e.g. ('jira', cloudId, '/rest/api/3/myself'). */
  async productGet(accessToken: string, product: AtlassianProduct, cloudId: string, path: string): Promise<unknown> {
    const answer = await this.productRequest(accessToken, product, cloudId, { method: 'GET', path });
    if (answer.status >= 200 && answer.status < 300) return answer.json;
    throw apiError(answer);
  }

  /**
   * One call to a product REST API through the API gateway (`{ATLASSIAN_API_URL}/ex/{product}/{cloudId}{path}`), as
   * the user whose access token it carries. Answers whatever status came back, a 429 included; throws only for a
   * timeout, a broken connection, or a call the rate-limit governor refuses because its scope is paused (`rate_limited`
   * with `details.paused`). `productError` turns an answer that is not a success into the typed error.
   */
  productRequest(accessToken: string, product: AtlassianProduct, cloudId: string, request: ProductRequest): Promise<ProductAnswer> {
    const query = request.query && Object.keys(request.query).length > 0 ? `?${new URLSearchParams(request.query).toString()}` : '';
    const url = `${this.config.atlassian.apiUrl}/ex/${product}/${encodeURIComponent(cloudId)}${request.path}${query}`;
    const headers: Record<string, string> = { Authorization: `Bearer ${accessToken}`, Accept: 'application/json' };
    if (request.body !== undefined) headers['Content-Type'] = 'application/json';
    const call = { product, cloudId, method: request.method, path: request.path };
    return this.governed(call, () =>
      this.send(url, { method: request.method, headers, body: request.body === undefined ? undefined : JSON.stringify(request.body) }),
    );
  }

  /**
   * A call to a product REST API as the user, with the answer's body left as a stream for the caller to send on
   * (`StreamedAnswer`), whatever its status. Like `productRequest` it goes through the gate; it throws for a timeout
   * (connecting, or until the answer's head), a broken connection, a refusal of the gate, and for a path that would
   * leave `{ATLASSIAN_API_URL}/ex/{product}/{cloudId}/` once a URL parser has read it (the caller must refuse those).
   */
  async productStream(
    accessToken: string,
    product: AtlassianProduct,
    cloudId: string,
    request: ProductStreamRequest,
  ): Promise<StreamedAnswer> {
    const url = this.siteUrl(product, cloudId, request.path);
    const headers: Record<string, string> = {
      ...request.headers,
      Authorization: `Bearer ${accessToken}`,
      'Accept-Encoding': ACCEPTED_ENCODINGS,
    };
    if (request.body !== undefined) headers['Content-Length'] = String(request.body.length);
    const pathAndQuery = request.query === '' ? url.pathname : `${url.pathname}?${request.query}`;
    return this.governed({ product, cloudId, method: request.method, path: request.path }, () =>
      this.stream.send({ url, pathAndQuery, method: request.method, headers, body: request.body }),
    );
  }

  /** Closes the streamed calls' idle keep-alive connections (Nest calls it when the application stops). */
  onApplicationShutdown(): void {
    this.stream.close();
  }

  /** `{apiUrl}/ex/{product}/{cloudId}{path}`, refused unless a URL parser leaves it exactly as built, under the site. */
  private siteUrl(product: AtlassianProduct, cloudId: string, path: string): URL {
    const site = `${this.config.atlassian.apiUrl}/ex/${product}/${encodeURIComponent(cloudId)}/`;
    const target = `${site}${path.slice(1)}`;
    const url = URL.canParse(target) ? new URL(target) : undefined;
    if (!path.startsWith('/') || url?.href !== target || !url.href.startsWith(site)) {
      throw new Error(`Refusing a product call whose path does not stay under /ex/${product}/{cloudId}/`);
    }
    return url;
  }

  /**
   * The one way out to Atlassian's API as a user: the gate may refuse the call (its scope is paused), and learns how
   * every call that went out ended.
   */
  private async governed<T extends { readonly status: number; readonly headers: AnswerHeaders }>(
    call: GatedCall,
    send: () => Promise<T>,
  ): Promise<T> {
    const refusal = this.gate.admit(call);
    if (refusal) throw pausedError(refusal);
    const started = performance.now();
    let answer: T;
    try {
      answer = await send();
    } catch (error) {
      if (error instanceof AtlassianError && (error.kind === 'timeout' || error.kind === 'network')) {
        await this.gate.record(call, { kind: error.kind, seconds: secondsSince(started) });
      }
      throw error;
    }
    await this.gate.record(call, { kind: 'answered', status: answer.status, headers: answer.headers, seconds: secondsSince(started) });
    return answer;
  }

  private async tokenRequest(body: Record<string, string>): Promise<TokenSet> {
    const answer = await this.send(`${this.config.atlassian.authUrl}/oauth/token`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
      body: JSON.stringify(body),
    });
    if (answer.status >= 200 && answer.status < 300) return parseTokenSet(answer.json);
    throw tokenEndpointError(answer);
  }

  private async apiGet(accessToken: string, path: string): Promise<unknown> {
    const answer = await this.governed({ product: 'platform', method: 'GET', path }, () =>
      this.send(`${this.config.atlassian.apiUrl}${path}`, {
        method: 'GET',
        headers: { Authorization: `Bearer ${accessToken}`, Accept: 'application/json' },
      }),
    );
    if (answer.status >= 200 && answer.status < 300) return answer.json;
    throw apiError(answer);
  }

  private send(url: string, call: HttpCall): Promise<HttpAnswer> {
    const target = new URL(url);
    const secure = target.protocol === 'https:';
    const payload = call.body === undefined ? undefined : Buffer.from(call.body, 'utf8');
    return new Promise<HttpAnswer>((resolve, reject) => {
      let settled = false;
      const settle = (finish: () => void): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        finish();
      };
      const request = (secure ? httpsRequest : httpRequest)(target, {
        method: call.method,
        agent: secure ? this.httpsAgent : this.httpAgent,
        headers: payload ? { ...call.headers, 'Content-Length': String(payload.length) } : call.headers,
      });
      const timer = setTimeout(() => {
        settle(() => reject(new AtlassianError('timeout', `Atlassian did not answer within ${this.timeoutMs} ms`)));
        request.destroy();
      }, this.timeoutMs);
      request.on('error', (error) =>
        settle(() => reject(new AtlassianError('network', `Atlassian could not be reached (${describeNetworkError(error)})`))),
      );
      request.on('response', (response: IncomingMessage) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('error', (error) =>
          settle(() => reject(new AtlassianError('network', `Atlassian's answer was cut off (${describeNetworkError(error)})`))),
        );
        response.on('end', () =>
          settle(() =>
            resolve({
              status: response.statusCode ?? 0,
              headers: toHeaders(response.headers),
              json: parseJson(Buffer.concat(chunks).toString('utf8')),
            }),
          ),
        );
      });
      request.end(payload);
    });
  }
}

function toHeaders(incoming: IncomingHttpHeaders): Headers {
  const headers = new Headers();
  for (const [name, value] of Object.entries(incoming)) {
    if (Array.isArray(value)) for (const one of value) headers.append(name, one);
    else if (value !== undefined) headers.set(name, value);
  }
  return headers;
}

function secondsSince(started: number): number {
  return (performance.now() - started) / 1000;
}

function pausedError(refusal: GateRefusal): AtlassianError {
  return new AtlassianError(
    'rate_limited',
    `Atlassian rate limited this app${refusal.reason ? ` (${refusal.reason})` : ''} and the pause has not ended; the call was not sent`,
    { status: 429, retryAfterMs: refusal.retryAfterMs, reason: refusal.reason, paused: true },
  );
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function stringField(body: unknown, name: string): string | undefined {
  const value = (body as Record<string, unknown> | null | undefined)?.[name];
  return typeof value === 'string' && value.length > 0 ? value : undefined;
}

function badResponse(message: string, status?: number): AtlassianError {
  return new AtlassianError('bad_response', `Atlassian answered unexpectedly: ${message}`, { status });
}

function parseTokenSet(body: unknown): TokenSet {
  const accessToken = stringField(body, 'access_token');
  const expiresIn = (body as Record<string, unknown> | undefined)?.expires_in;
  if (!accessToken || typeof expiresIn !== 'number' || !(expiresIn > 0)) {
    throw badResponse('the token endpoint answered without access_token and expires_in');
  }
  return {
    accessToken,
    refreshToken: stringField(body, 'refresh_token'),
    expiresInSeconds: expiresIn,
    scopes: (stringField(body, 'scope') ?? '').split(' ').filter(Boolean),
  };
}

/** An answer's `Retry-After` (seconds, or an HTTP date) as milliseconds from `nowMs`; undefined without a readable one. */
export function retryAfterMs(headers: AnswerHeaders, nowMs: number = Date.now()): number | undefined {
  const value = headers.get('retry-after');
  if (!value) return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - nowMs);
}

/** Errors common to the token endpoint and the API: rate limits, outages, and answers that are not JSON. */
function transientError(answer: HttpAnswer): AtlassianError | undefined {
  const { status } = answer;
  if (status === 429) {
    return new AtlassianError('rate_limited', 'Atlassian is rate limiting this app', {
      status,
      retryAfterMs: retryAfterMs(answer.headers),
      reason: answer.headers.get('ratelimit-reason') ?? undefined,
    });
  }
  if (status >= 500) {
    return new AtlassianError('unavailable', `Atlassian answered ${status}`, { status, retryAfterMs: retryAfterMs(answer.headers) });
  }
  if (status >= 300 && status < 400) return badResponse(`a redirect (${status}) instead of an answer`, status);
  return undefined;
}

function tokenEndpointError(answer: HttpAnswer): AtlassianError {
  const transient = transientError(answer);
  if (transient) return transient;
  const error = stringField(answer.json, 'error');
  const description = stringField(answer.json, 'error_description');
  const details = { status: answer.status, error, description };
  if (answer.status === 401) {
    return new AtlassianError(
      'client_unauthorized',
      'Atlassian refused the client credentials (check ATLASSIAN_CLIENT_ID and ATLASSIAN_CLIENT_SECRET)',
      details,
    );
  }
  switch (error) {
    case 'invalid_grant':
      return new AtlassianError('invalid_grant', `Atlassian answered invalid_grant: ${description ?? 'no description'}`, details);
    case 'unauthorized_client':
      return new AtlassianError(
        'unauthorized_client',
        `Atlassian answered unauthorized_client: ${description ?? 'no description'}`,
        details,
      );
    case 'invalid_request':
      return new AtlassianError('invalid_request', `Atlassian answered invalid_request: ${description ?? 'no description'}`, details);
    case 'access_denied':
      return new AtlassianError('client_unauthorized', 'Atlassian refused the client credentials', details);
    default:
      return badResponse(error ? `error ${error}` : `status ${answer.status} without an OAuth error`, answer.status);
  }
}

/** The typed error for a product answer that is not a success (2xx). */
export function productError(answer: ProductAnswer): AtlassianError {
  return apiError(answer);
}

function apiError(answer: HttpAnswer): AtlassianError {
  const transient = transientError(answer);
  if (transient) return transient;
  const message = stringField(answer.json, 'message');
  const details = { status: answer.status, description: message };
  if (answer.status === 401)
    return new AtlassianError('token_rejected', `Atlassian refused the access token${message ? `: ${message}` : ''}`, details);
  if (answer.status === 403) return new AtlassianError('forbidden', 'Atlassian refused access to this resource', details);
  if (answer.status === 404) return new AtlassianError('not_found', 'Atlassian has no such resource', details);
  return badResponse(`status ${answer.status}`, answer.status);
}

/** The same site can be listed once per product with different scopes: one entry per id, scopes united. */
export function mergeResources(items: unknown[]): AccessibleResource[] {
  const byId = new Map<string, AccessibleResource>();
  for (const item of items) {
    const id = stringField(item, 'id');
    const url = stringField(item, 'url');
    if (!id || !url) continue;
    const rawScopes = (item as { scopes?: unknown }).scopes;
    const scopes = Array.isArray(rawScopes) ? rawScopes.filter((s): s is string => typeof s === 'string') : [];
    const existing = byId.get(id);
    byId.set(id, {
      id,
      url,
      name: existing?.name ?? stringField(item, 'name') ?? url,
      scopes: [...new Set([...(existing?.scopes ?? []), ...scopes])].sort(),
      avatarUrl: existing?.avatarUrl ?? stringField(item, 'avatarUrl') ?? null,
    });
  }
  return [...byId.values()].sort((a, b) => a.name.localeCompare(b.name) || a.id.localeCompare(b.id));
}

function describeNetworkError(error: unknown): string {
  const code = (error as { code?: unknown }).code;
  return typeof code === 'string' ? code : ((error as Error).name ?? 'unknown error');
}
