import { Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { changedRowCount, returnedRows } from './returning.js';

export interface NewConnectTicket {
  readonly ticketHash: string;
  readonly userId: string;
  readonly createdAt: Date;
  readonly expiresAt: Date;
}

export interface ConnectTicketRecord {
  readonly userId: string;
  readonly expiresAt: Date;
  readonly usedAt: Date | null;
}

/** connect_tickets: single-use, short-lived tickets, stored as SHA-256 hashes only. */
@Injectable()
export class ConnectTicketsRepository {
  constructor(private readonly dataSource: DataSource) {}

  async insert(ticket: NewConnectTicket): Promise<void> {
    await this.dataSource.query(`INSERT INTO connect_tickets (ticket_hash, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4)`, [
      ticket.ticketHash,
      ticket.userId,
      ticket.createdAt,
      ticket.expiresAt,
    ]);
  }

  /** Marks an unused, unexpired ticket used and answers its userId; one statement, so only one of two racing requests wins. */
  async redeem(ticketHash: string, now: Date): Promise<string | undefined> {
    const result: unknown = await this.dataSource.query(
      `UPDATE connect_tickets SET used_at = $2 WHERE ticket_hash = $1 AND used_at IS NULL AND expires_at > $2 RETURNING user_id`,
      [ticketHash, now],
    );
    return returnedRows<{ user_id: string }>(result)[0]?.user_id;
  }

  /** For explaining a refused ticket: used, expired, or never issued. */
  async findByHash(ticketHash: string): Promise<ConnectTicketRecord | undefined> {
    const rows: { user_id: string; expires_at: Date; used_at: Date | null }[] = await this.dataSource.query(
      `SELECT user_id, expires_at, used_at FROM connect_tickets WHERE ticket_hash = $1`,
      [ticketHash],
    );
    const row = rows[0];
    return row && { userId: row.user_id, expiresAt: new Date(row.expires_at), usedAt: row.used_at && new Date(row.used_at) };
  }

  async deleteExpiredBefore(before: Date): Promise<number> {
    const result: unknown = await this.dataSource.query(`DELETE FROM connect_tickets WHERE expires_at < $1`, [before]);
    return changedRowCount(result);
  }
}
