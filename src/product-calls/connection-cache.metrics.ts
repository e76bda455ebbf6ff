import { Injectable } from '@nestjs/common';
import { Gauge, Registry } from 'prom-client';
import { ConnectionCache } from '../connection-store/connection-cache.js';

/** Whether product calls on this replica use what ConnectionCache remembers, read when Prometheus scrapes. */
@Injectable()
export class ConnectionCacheMetrics {
  constructor(registry: Registry, cache: ConnectionCache) {
    new Gauge({
      name: 'atlassian_connection_cache_listening',
      help:
        '1 while this replica hears connection changes and product calls use the tokens and sites it remembers; 0 while ' +
        'every product call reads the database (no product call yet, the listening session lost or its probe late, or ' +
        'the embedded database)',
      registers: [registry],
      collect() {
        this.set(cache.isListening() ? 1 : 0);
      },
    });
  }
}
