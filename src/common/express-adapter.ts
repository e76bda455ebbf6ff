import { RequestMethod } from '@nestjs/common';
import { ExpressAdapter } from '@nestjs/platform-express';
import express from 'express';

/** How Nest's adapter mounts one middleware function on a path (Nest types the function as any function). */
type MountMiddleware = ReturnType<ExpressAdapter['createMiddlewareFactory']>;

/** How Nest hands Express a middleware path that matches every request (`forRoutes('*')`, nestjs-pino's default). */
const EVERY_PATH = /^\{?\/?\{?\*[A-Za-z]*\}?$/;

/**
 * Express with one spelling per route: `/v1/users/x/connection` is a route, `/V1/users/x/connection` and
 * `/v1/users/x/connection/` are not (Express matches case-insensitively and ignores a trailing slash unless told
 * otherwise). Otherwise every spelling is a way past whatever looks at the path before the router, such as the API's
 * own headers, error shape and rate limit. The router reads these settings once, when it is created, so they are set
 * on the instance before Nest's adapter creates it.
 */
function strictExpress(): express.Express {
  const instance = express();
  instance.enable('case sensitive routing');
  instance.enable('strict routing');
  return instance;
}

/**
 * Routing is strict and case-sensitive (see strictExpress).
 *
 * Nest applies middleware for all methods with Express 5's `app.all(path, fn)`, which adds the function once per
 * HTTP method (35 layers) that the router then walks on every request, after matching the path and decoding its
 * segments. Middleware for every method of every path (the request logger's two, the HTTP metrics) is mounted with `app.use` instead:
 * one layer and no path to match. Other middleware is mounted as Nest does it.
 * This leans on Nest internals (the method, and how Nest spells a path for every request): test/e2e/express-adapter.spec.ts
 * checks both on the booted app, so a Nest upgrade that changes them fails there.
 */
export class AppExpressAdapter extends ExpressAdapter {
  constructor() {
    super(strictExpress());
  }

  override createMiddlewareFactory(requestMethod: RequestMethod): MountMiddleware {
    const mount = super.createMiddlewareFactory(requestMethod);
    if (requestMethod !== RequestMethod.ALL) return mount;
    return (path, callback) => {
      if (EVERY_PATH.test(path)) this.use(callback);
      else mount(path, callback);
    };
  }
}
