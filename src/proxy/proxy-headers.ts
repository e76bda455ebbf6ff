import type { IncomingHttpHeaders } from 'node:http';

/** The caller's request headers that go to Atlassian; its Authorization, cookies and forwarding headers never do. */
const FORWARDED_REQUEST_HEADERS = ['accept', 'accept-language', 'content-type', 'x-atlassian-token', 'x-experimentalapi'];

/** Atlassian's answer headers the caller gets, besides the rate-limit families below. */
const ANSWERED_HEADERS = new Set(['content-type', 'retry-after', 'beta-retry-after', 'link', 'x-arequestid']);
/** `X-RateLimit-*`, `RateLimit-*`, `Beta-RateLimit*` (the `X-Beta-RateLimit-*` some answers have been seen with are not among them). */
const ANSWERED_PREFIXES = ['x-ratelimit-', 'ratelimit-', 'beta-ratelimit'];

export function forwardedRequestHeaders(incoming: IncomingHttpHeaders): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const name of FORWARDED_REQUEST_HEADERS) {
    const value = incoming[name];
    if (typeof value === 'string') headers[name] = value;
  }
  return headers;
}

/** Whether a header of Atlassian's answer is passed on (names in any case). */
export function isAnsweredHeader(name: string): boolean {
  const lower = name.toLowerCase();
  return ANSWERED_HEADERS.has(lower) || ANSWERED_PREFIXES.some((prefix) => lower.startsWith(prefix));
}

/**
 * The headers of Atlassian's answer the caller gets: the ones above, and Content-Length, which only frames the body
 * passed on unchanged (the transport drops it when it decompressed the body).
 */
export function answeredHeaders(answer: Headers): [name: string, value: string][] {
  return [...answer].filter(([name]) => name === 'content-length' || isAnsweredHeader(name));
}
