import { Column, Entity, Index, PrimaryGeneratedColumn } from 'typeorm';

/**
 * The `state` of one authorization request, stored hashed. It binds the callback to a userId and to the
 * browser that started (the hash of a cookie), and remembers enough (when it was made, when it was consumed,
 * the exact redirect_uri sent) to explain a rejected code afterwards.
 */
@Entity({ name: 'oauth_states' })
@Index('oauth_states_expires_at_idx', ['expiresAt'])
export class OAuthStateEntity {
  @PrimaryGeneratedColumn('uuid')
  id: string;

  @Column({ name: 'state_hash', type: 'text', unique: true })
  stateHash: string;

  @Column({ name: 'user_id', type: 'text' })
  userId: string;

  @Column({ name: 'browser_hash', type: 'text' })
  browserHash: string;

  @Column({ name: 'redirect_uri', type: 'text' })
  redirectUri: string;

  @Column({ name: 'created_at', type: 'timestamptz' })
  createdAt: Date;

  @Column({ name: 'expires_at', type: 'timestamptz' })
  expiresAt: Date;

  @Column({ name: 'consumed_at', type: 'timestamptz', nullable: true })
  consumedAt: Date | null;

  @Column({ type: 'text', nullable: true })
  outcome: string | null;
}
