import type { IncomingHttpHeaders } from 'node:http';
import { UnsupportedMediaTypeException } from '@nestjs/common';
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
const API_HEADERS: readonly (readonly [name: string, value: string])[] = [
  ['Cache-Control', 'no-store'],
  ['Content-Security-Policy', "default-src 'none'; frame-ancestors 'none'"],
  ['Cross-Origin-Resource-Policy', 'same-origin'],
  ['Referrer-Policy', 'no-referrer'],
  ['X-Content-Type-Options', 'nosniff'],
  ['X-Frame-Options', 'DENY'],
];

/** Sent only behind https: over plain http a browser ignores it, and it says something untrue about the service. */
const STRICT_TRANSPORT_SECURITY = ['Strict-Transport-Security', 'max-age=31536000; includeSubDomains'] as const;

export interface TransportOptions {
  /** PUBLIC_URL is https: a TLS-terminating proxy is in front. */
  readonly https: boolean;
}

/** The API's headers, for every answer under /v1. */
export function apiHeaders({ https }: TransportOptions): readonly (readonly [name: string, value: string])[] {
  return https ? [...API_HEADERS, STRICT_TRANSPORT_SECURITY] : API_HEADERS;
}

/**
 * Security headers for every answer: the API's own set under /v1, helmet's defaults elsewhere, without a CSP (pages set
 * their own) and with the one framing policy of every page here: none may be framed, as their CSPs say too.
 */
export function securityHeaders(transport: TransportOptions): RequestHandler {
  const headers = apiHeaders(transport);
  const documents = helmet({ contentSecurityPolicy: false, xFrameOptions: { action: 'deny' }, strictTransportSecurity: transport.https });
  return (req, res, next) => {
    if (!isApiPath(req.path)) return documents(req, res, next);
    for (const [name, value] of headers) res.setHeader(name, value);
    next();
  };
}

const JSON_TYPES = ['application/json', 'application/*+json'];

/**
 * The API reads JSON bodies only. A body of another type (a form, text, or none named) would be ignored, and with it
 * what the caller meant to say (`forceRefresh`): it is refused with 415 instead, before any parser reads it. Routes
 * that forward bodies of any type as they came (the proxy's) are named by `forwardsBodies`.
 */
export function apiBodiesAreJson(forwardsBodies: (path: string) => boolean): RequestHandler {
  return (req, _res, next) => {
    if (!isApiPath(req.path) || forwardsBodies(req.path) || !carriesBody(req.headers) || req.is(JSON_TYPES)) return next();
    next(new UnsupportedMediaTypeException('Send the body as JSON, with Content-Type: application/json.'));
  };
}

function carriesBody(headers: IncomingHttpHeaders): boolean {
  const length = headers['content-length'];
  return headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}
