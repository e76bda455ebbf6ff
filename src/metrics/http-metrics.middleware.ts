import { performance } from 'node:perf_hooks';
import { Injectable, type NestMiddleware } from '@nestjs/common';
import type { NextFunction, Request, Response } from 'express';
import { Histogram, Registry } from 'prom-client';
import { arrivalOf } from '../common/request-arrival.js';

/** The HTTP request histogram, created once per registry (Nest builds middleware instances on its own). */
@Injectable()
export class HttpMetrics {
  readonly duration: Histogram<'method' | 'route' | 'status_code'>;

  constructor(registry: Registry) {
    this.duration = new Histogram({
      name: 'http_request_duration_seconds',
      help: 'HTTP request duration by method, route pattern and status code',
      labelNames: ['method', 'route', 'status_code'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: [registry],
    });
  }
}

/**
 * Times every HTTP request. The route label is the matched route's pattern (`/v1/users/:userId/connection`), never
 * the path itself, so no user id becomes a label; requests that matched no route share `unmatched`.
 */
@Injectable()
export class HttpMetricsMiddleware implements NestMiddleware {
  constructor(private readonly metrics: HttpMetrics) {}

  use(req: Request, res: Response, next: NextFunction): void {
    // A refusal held by the refusal pacer before this middleware ran is timed from its arrival, pause included.
    const started = arrivalOf(req);
    res.once('finish', () => {
      const pattern = (req.route as { path?: unknown } | undefined)?.path;
      const route = typeof pattern === 'string' ? `${req.baseUrl}${pattern}` : 'unmatched';
      this.metrics.duration.observe(
        { method: req.method, route, status_code: String(res.statusCode) },
        (performance.now() - started) / 1000,
      );
    });
    next();
  }
}
