import { Injectable, Logger } from '@nestjs/common';
import { Interval } from '@nestjs/schedule';
import { Clock } from '../common/clock.js';
import { ConnectTicketsRepository } from './connect-tickets.repository.js';
import { OAuthStatesRepository } from './oauth-states.repository.js';

/** Expired tickets and states are kept this long, so a failed sign-in can still be explained afterwards. */
export const EXPIRED_RETENTION_DAYS = 7;
const PURGE_INTERVAL_MS = 60 * 60 * 1000;

/** Keeps connect_tickets and oauth_states from growing with every sign-in ever started. */
@Injectable()
export class OAuthHousekeepingService {
  private readonly logger = new Logger(OAuthHousekeepingService.name);

  constructor(
    private readonly tickets: ConnectTicketsRepository,
    private readonly states: OAuthStatesRepository,
    private readonly clock: Clock,
  ) {}

  @Interval(PURGE_INTERVAL_MS)
  async purgeExpired(): Promise<void> {
    const before = new Date(this.clock.now().getTime() - EXPIRED_RETENTION_DAYS * 24 * 3600 * 1000);
    try {
      const tickets = await this.tickets.deleteExpiredBefore(before);
      const states = await this.states.deleteExpiredBefore(before);
      this.logger.log(`Purged ${tickets} connect tickets and ${states} OAuth states expired more than ${EXPIRED_RETENTION_DAYS} days ago`);
    } catch (error) {
      this.logger.warn(`Purging expired connect tickets and OAuth states failed: ${(error as Error).name}: ${(error as Error).message}`);
    }
  }
}
