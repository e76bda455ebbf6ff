import { Injectable, Logger } from '@nestjs/common';
import { Clock } from '../common/clock.js';
import { AppConfig } from '../config/app-config.js';
import { ConnectFailure, type ConnectFailureCode } from './connect-failure.js';
import { ConnectTicketsRepository } from './connect-tickets.repository.js';
import { hashSecret, looksLikeSecret, SecretGenerator } from './secrets.js';

/** Long enough to open a link the SaaS backend just handed out, short enough that a leaked one is soon worthless. */
export const TICKET_TTL_SECONDS = 600;

export interface ConnectLink {
  readonly url: string;
  readonly expiresAt: Date;
}

/**
 * Tickets let the SaaS backend hand its user's browser a link without an API key: each one is bound to one userId,
 * works once and expires soon. Only its SHA-256 is stored.
 */
@Injectable()
export class ConnectTicketsService {
  private readonly logger = new Logger(ConnectTicketsService.name);

  constructor(
    private readonly tickets: ConnectTicketsRepository,
    private readonly secrets: SecretGenerator,
    private readonly clock: Clock,
    private readonly config: AppConfig,
  ) {}

  async mint(userId: string): Promise<ConnectLink> {
    const ticket = this.secrets.secret();
    const createdAt = this.clock.now();
    const expiresAt = new Date(createdAt.getTime() + TICKET_TTL_SECONDS * 1000);
    await this.tickets.insert({ ticketHash: hashSecret(ticket), userId, createdAt, expiresAt });
    return { url: `${this.config.publicUrl}/auth/atlassian/start?ticket=${ticket}`, expiresAt };
  }

  /** The userId the ticket was minted for; the ticket is spent. */
  async redeem(ticket: string): Promise<string> {
    if (!looksLikeSecret(ticket)) throw this.refuse('ticket_invalid', 'This connect link was not issued by this service.');
    const ticketHash = hashSecret(ticket);
    const now = this.clock.now();
    const userId = await this.tickets.redeem(ticketHash, now);
    if (userId !== undefined) return userId;
    const known = await this.tickets.findByHash(ticketHash);
    if (!known) throw this.refuse('ticket_invalid', 'This connect link was not issued by this service.');
    if (known.usedAt) throw this.refuse('ticket_used', 'This connect link has already been opened once.');
    throw this.refuse('ticket_expired', 'This connect link has expired.');
  }

  private refuse(code: ConnectFailureCode, detail: string): ConnectFailure {
    this.logger.warn(`Connect link refused: ${code}`);
    return new ConnectFailure(code, detail);
  }
}
