import { RequestMethod } from '@nestjs/common';
import { ExpressAdapter } from '@nestjs/platform-express';

/** How Nest hands Express a middleware path that matches every request (`forRoutes('*')`, nestjs-pino's default). */
const EVERY_PATH = /^\{?\/?\{?\*[A-Za-z]*\}?$/;

/**
 * Nest applies middleware for all methods with Express 5's `app.all(path, fn)`, which adds the function once per
 * HTTP method (35 layers) that the router then walks on every request, after matching the path and decoding its
 * segments. Middleware for every method of every path (the request logger's two, the HTTP metrics) is mounted with `app.use` instead:
 * one layer and no path to match. Other middleware is mounted as Nest does it.
 */
export class AppExpressAdapter extends ExpressAdapter {
  override createMiddlewareFactory(requestMethod: RequestMethod): (path: string, callback: Function) => unknown {
    const mount = super.createMiddlewareFactory(requestMethod);
    if (requestMethod !== RequestMethod.ALL) return mount;
    return (path, callback) => (EVERY_PATH.test(path) ? this.use(callback) : mount(path, callback));
  }
}
