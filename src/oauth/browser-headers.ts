import type { RequestHandler } from 'express';
import helmet from 'helmet';
import type { TransportOptions } from '../api/api-routes.js';
import { PAGE_STYLE_HASH } from './connect-pages.js';

/** Where the browser routes live; their pages and redirects get the headers below. */
export const BROWSER_ROUTES_PREFIX = '/auth';

/**
 * The result pages load nothing: no script, no image, nothing from another origin, only their own stylesheet
 * (allowed by hash). No Referer ever leaves them or their redirects, so a code or state in the address never leaks,
 * and nothing is cached, because the addresses carry one-time values. No page may be framed, said once for every
 * browser: CSP's `frame-ancestors 'none'` and, for those that only read the older header, `X-Frame-Options: DENY`.
 */
export function browserRouteHeaders(transport: TransportOptions): RequestHandler[] {
  return [
    helmet({
      contentSecurityPolicy: {
        useDefaults: false,
        directives: {
          defaultSrc: ["'none'"],
          styleSrc: [PAGE_STYLE_HASH],
          baseUri: ["'none'"],
          formAction: ["'none'"],
          frameAncestors: ["'none'"],
        },
      },
      referrerPolicy: { policy: 'no-referrer' },
      xFrameOptions: { action: 'deny' },
      strictTransportSecurity: transport.https,
    }),
    (_req, res, next) => {
      res.setHeader('Cache-Control', 'no-store');
      next();
    },
  ];
}
