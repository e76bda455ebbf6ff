import { Injectable, Logger } from '@nestjs/common';
import { Gauge, Registry } from 'prom-client';
import { DataSource } from 'typeorm';
import { Clock } from '../common/clock.js';
import { consentedBefore } from './consent.policy.js';
import { ConnectionsRepository } from '../connection-store/connections.repository.js';

const DAY_MS = 86_400_000;
/** How far ahead the gauge looks: what an operator plans for, whatever RECONSENT_WARNING_DAYS is. */
const RECONSENT_HORIZON_MS = 14 * DAY_MS;

/** The lifecycle's Prometheus gauge, read from the database (one count through consented_at's index) when scraped. */
@Injectable()
export class LifecycleMetrics {
  private readonly logger = new Logger(LifecycleMetrics.name);

  constructor(registry: Registry, dataSource: DataSource, repository: ConnectionsRepository, clock: Clock) {
    const logger = this.logger;
    new Gauge({
      name: 'atlassian_connections_reconsent_due',
      help: 'Connections, reauth_required aside, whose 365-day consent ends within 14 days or has ended: users to ask to reconnect',
      registers: [registry],
      async collect() {
        const bound = consentedBefore(new Date(clock.now().getTime() + RECONSENT_HORIZON_MS));
        try {
          this.set(await repository.countConsentedBefore(dataSource.manager, bound));
        } catch (error) {
          logger.warn(`Connection lifecycle metrics could not be read from the database: ${(error as Error).message}`);
        }
      },
    });
  }
}
