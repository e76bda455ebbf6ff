import { Injectable } from '@nestjs/common';
import { Histogram, Registry } from 'prom-client';
import { PROXY_PRODUCTS } from './proxy-path.js';

const METHODS = new Set(['GET', 'POST', 'PUT', 'PATCH', 'DELETE']);

/** The proxy's latency, as its callers see it up to the answer's head; labels never name a user, site or path. */
@Injectable()
export class ProxyMetrics {
  private readonly duration: Histogram<'product' | 'method' | 'status'>;

  constructor(registry: Registry) {
    this.duration = new Histogram({
      name: 'atlassian_proxy_request_duration_seconds',
      help:
        "Proxy requests from their arrival to their answer's head (Atlassian's, or a refusal), by product, method and status " +
        'class (2xx, 4xx, 429, 5xx); the body streams on after it',
      labelNames: ['product', 'method', 'status'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 15],
      registers: [registry],
    });
  }

  observe(product: string, method: string, status: number, seconds: number): void {
    this.duration.observe(
      {
        product: (PROXY_PRODUCTS as readonly string[]).includes(product) ? product : 'other',
        method: METHODS.has(method) ? method : 'other',
        status: status === 429 ? '429' : `${Math.floor(status / 100)}xx`,
      },
      seconds,
    );
  }
}
