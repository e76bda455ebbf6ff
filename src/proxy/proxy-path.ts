import type { RequestHandler } from 'express';
import type { AtlassianProduct } from '../atlassian/atlassian.client.js';

export const PROXY_PRODUCTS: readonly AtlassianProduct[] = ['jira', 'confluence'];

/** `/v1/users/{userId}/proxy/…`: the routes whose request bodies are passed on as they came, never parsed. */
const PROXY_ROUTE = /^\/v1\/users\/[^/]+\/proxy(?:\/|$)/;
/** Segments before the product path: '', v1, users, {userId}, proxy, {product}, {cloudId}. */
const ROUTE_SEGMENTS = 7;
/** RFC 3986 `pchar`: what a path segment may hold without percent-encoding. */
const PCHAR_SEGMENT = /^(?:[A-Za-z0-9\-._~!$&'()*+,;=:@]|%[0-9A-Fa-f]{2})*$/;
/** A scheme followed by `:`, as in `http:` or `javascript:`: the start of an absolute URL. */
const SCHEME = /^[A-Za-z][A-Za-z0-9+.-]*:/;
// eslint-disable-next-line no-control-regex -- control characters are what it looks for
const CONTROL = /[\u0000-\u001f\u007f]/;
/** Encodings peeled off a segment before it counts as hiding something: `%25252e` is `%2e` three times over. */
const MAX_DECODINGS = 3;

export function isProxyPath(path: string): boolean {
  return PROXY_ROUTE.test(path);
}

export function isProxyProduct(product: string): product is AtlassianProduct {
  return (PROXY_PRODUCTS as readonly string[]).includes(product);
}

/**
 * Express decodes every route parameter, the proxy's `{path…}` too, and refuses a request whose parameter does not
 * decode before any handler sees it. The proxy judges the product path as it was sent (see `pathProblem`), so here its
 * `%` are escaped in the URL Express routes by: it decodes them back to the text sent. `originalUrl` is left as sent.
 */
export function routeProductPathsAsSent(): RequestHandler {
  return (req, _res, next) => {
    if (isProxyPath(req.path)) {
      const mark = req.url.indexOf('?');
      const pathname = mark < 0 ? req.url : req.url.slice(0, mark);
      const segments = pathname.split('/');
      const escaped = [...segments.slice(0, ROUTE_SEGMENTS), ...segments.slice(ROUTE_SEGMENTS).map((s) => s.replaceAll('%', '%25'))];
      req.url = `${escaped.join('/')}${mark < 0 ? '' : req.url.slice(mark)}`;
    }
    next();
  };
}

/** The product path (after `/{cloudId}`, starting with `/`) and the query (without `?`) of a proxy request, as sent. */
export function proxyTarget(originalUrl: string): { path: string; query: string } {
  const mark = originalUrl.indexOf('?');
  const pathname = mark < 0 ? originalUrl : originalUrl.slice(0, mark);
  return { path: `/${pathname.split('/').slice(ROUTE_SEGMENTS).join('/')}`, query: mark < 0 ? '' : originalUrl.slice(mark + 1) };
}

/**
 * Why a product path must not be forwarded, or undefined when it may. It is appended to
 * `{ATLASSIAN_API_URL}/ex/{product}/{cloudId}` and must reach nothing else, whoever decodes it how many times on the
 * way: no `.` or `..` segment in any encoding (nor `..;x`, which Java servers read as `..`), no encoded `/` or `\`, no
 * `@`, no scheme at its start, no empty segment but a trailing one, and nothing that is not percent-encoded as it must be.
 */
export function pathProblem(path: string): string | undefined {
  if (!path.startsWith('/') || path === '/') return 'it is empty';
  const segments = path.slice(1).split('/');
  for (const [index, segment] of segments.entries()) {
    if (segment === '') {
      if (index === segments.length - 1) continue;
      return 'it has an empty segment (//)';
    }
    if (!PCHAR_SEGMENT.test(segment)) return 'it has characters that must be percent-encoded';
    const problem = segmentProblem(segment, index === 0);
    if (problem) return problem;
  }
  return undefined;
}

function segmentProblem(segment: string, first: boolean): string | undefined {
  let current = segment;
  for (let decodings = 0; ; decodings++) {
    const name = current.split(';')[0];
    if (name === '.' || name === '..') return 'it has a . or .. segment';
    if (decodings > 0 && (current.includes('/') || current.includes('\\'))) return 'it has an encoded / or \\';
    if (current.includes('@')) return 'it has an @';
    if (CONTROL.test(current)) return 'it has control characters';
    if (first && SCHEME.test(current)) return 'it starts like an absolute URL';
    if (!current.includes('%')) return undefined;
    let decoded: string;
    try {
      decoded = decodeURIComponent(current);
    } catch {
      // Once decoded, a `%` that starts no valid escape is a plain character, which Atlassian decodes no further.
      return decodings === 0 ? 'it has malformed percent-encoding' : undefined;
    }
    if (decoded === current) return undefined;
    if (decodings === MAX_DECODINGS) return 'it is encoded more times over than any client does';
    current = decoded;
  }
}
