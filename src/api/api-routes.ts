import type { RequestHandler } from 'express';
import helmet from 'helmet';

/** `/v1` and what is under it, in any case. */
const API_PATH = /^\/v1(?:\/|$)/i;

/**
 * Whether a request path is the API's (`/v1`), the routes a backend calls with an API key: they get the API's guards,
 * headers and error shape. Routing is case-sensitive and strict, so only the exact spelling of a route reaches it;
 * the test is case-insensitive so that the other spellings (`/V1/…`, a trailing slash) are answered as the API answers
 * a path that is no route: 404 `not_found`, with the API's headers.
 */
export function isApiPath(path: string): boolean {
  return API_PATH.test(path);
}

/**
 * The API answers JSON to a backend, with users' sites, connection details and access tokens in it: nothing may store
 * it (`no-store`, as OAuth requires of token answers, so there is no ETag either: nothing would revalidate), frame it,
 * sniff it into something else, or run anything from it. This is OWASP's set for REST services; helmet's set for
 * documents is for the other routes.
 */
const API_HEADERS: [name: string, value: string][] = [
  ['Cache-Control', 'no-store'],
  ['Content-Security-Policy', "default-src 'none'; frame-ancestors 'none'"],
  ['Cross-Origin-Resource-Policy', 'same-origin'],
  ['Referrer-Policy', 'no-referrer'],
  ['Strict-Transport-Security', 'max-age=31536000; includeSubDomains'],
  ['X-Content-Type-Options', 'nosniff'],
  ['X-Frame-Options', 'DENY'],
];

/** Security headers for every answer: the API's own set under /v1, helmet's defaults (without a CSP) elsewhere. */
export function securityHeaders(): RequestHandler {
  const documents = helmet({ contentSecurityPolicy: false });
  return (req, res, next) => {
    if (!isApiPath(req.path)) return documents(req, res, next);
    for (const [name, value] of API_HEADERS) res.setHeader(name, value);
    next();
  };
}
