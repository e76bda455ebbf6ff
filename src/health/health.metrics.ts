import { Injectable } from '@nestjs/common';
import { Gauge, Registry } from 'prom-client';
import { DatabaseHealthIndicator } from './database.health.js';

/**
 * Readiness as a metric, so an alert can see it: the check GET /health/ready makes (database reachable, migrations
 * applied), run when Prometheus scrapes.
 */
@Injectable()
export class HealthMetrics {
  constructor(registry: Registry, database: DatabaseHealthIndicator) {
    new Gauge({
      name: 'atlassian_ready',
      help: '1 while this replica is ready (database reachable within 2 s, every migration applied), else 0',
      registers: [registry],
      async collect() {
        const result = await database.check('database');
        this.set(result.database?.status === 'up' ? 1 : 0);
      },
    });
  }
}
