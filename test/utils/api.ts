import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { TEST_API_KEY, type TestApp } from './app.js';

export interface ApiCall {
  /** The API key to send; null sends no Authorization header. Default: the test app's key. */
  readonly key?: string | null;
  readonly body?: unknown;
}

/** One request to the service's API, as the SaaS backend makes it. */
export function callApi(app: TestApp, method: string, path: string, call: ApiCall = {}): Promise<Response> {
  const key = call.key === undefined ? TEST_API_KEY : call.key;
  const headers: Record<string, string> = {};
  if (key !== null) headers.Authorization = `Bearer ${key}`;
  if (call.body !== undefined) headers['Content-Type'] = 'application/json';
  return fetch(`${app.baseUrl}${path}`, { method, headers, body: call.body === undefined ? undefined : JSON.stringify(call.body) });
}

/** The error code of an error answer, with its status: `[404, 'connection_not_found']`. */
export async function errorOf(response: Response): Promise<[number, string]> {
  const body = (await response.json()) as { error?: { code?: string; message?: unknown } };
  if (typeof body.error?.message !== 'string' || body.error.message.length === 0)
    throw new Error(`Not an error body: ${JSON.stringify(body)}`);
  return [response.status, body.error.code ?? ''];
}

export function userPath(userId: string, rest: string): string {
  return `/v1/users/${encodeURIComponent(userId)}${rest}`;
}

export interface RawAnswer {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly text: string;
}

/**
 * A request whose path goes out exactly as written (fetch and URL parsers would resolve `..` and `%2e%2e` first), as a
 * hostile or careless client may send it. The test app's key unless the headers say otherwise.
 */
export function rawApi(
  app: TestApp,
  method: string,
  path: string,
  options: { headers?: Record<string, string>; body?: string | Buffer } = {},
): Promise<RawAnswer> {
  const { hostname, port } = new URL(app.baseUrl);
  return new Promise((resolve, reject) => {
    const request = httpRequest(
      { hostname, port, method, path, headers: { Authorization: `Bearer ${TEST_API_KEY}`, ...options.headers } },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () =>
          resolve({ status: response.statusCode!, headers: response.headers, text: Buffer.concat(chunks).toString('utf8') }),
        );
        response.on('error', reject);
      },
    );
    request.on('error', reject);
    request.end(options.body);
  });
}

/** The error code of a raw answer, with its status. */
export function rawErrorOf(answer: RawAnswer): [number, string] {
  const body = JSON.parse(answer.text) as { error?: { code?: string; message?: unknown } };
  if (typeof body.error?.message !== 'string') throw new Error(`Not an error body: ${answer.text}`);
  return [answer.status, body.error.code ?? ''];
}
