import { Column, Entity, Index, PrimaryGeneratedColumn } from 'typeorm';

/** A single-use ticket minted by the API; only its SHA-256 hash is stored. */
@Entity({ name: 'connect_tickets' })
@Index('connect_tickets_expires_at_idx', ['expiresAt'])
export class ConnectTicketEntity {
  @PrimaryGeneratedColumn('uuid')
  id: string;

  @Column({ name: 'ticket_hash', type: 'text', unique: true })
  ticketHash: string;

  @Column({ name: 'user_id', type: 'text' })
  userId: string;

  @Column({ name: 'created_at', type: 'timestamptz' })
  createdAt: Date;

  @Column({ name: 'expires_at', type: 'timestamptz' })
  expiresAt: Date;

  @Column({ name: 'used_at', type: 'timestamptz', nullable: true })
  usedAt: Date | null;
}
