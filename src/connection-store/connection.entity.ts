import { Check, Column, Entity, Index, PrimaryGeneratedColumn } from 'typeorm';

export type ConnectionStatus = 'active' | 'refresh_failing' | 'reauth_required';

/**
 * One SaaS user's link to one Atlassian account. Tokens are stored only as AES-256-GCM ciphertext,
 * each beside the id of the key that sealed it. `dueAt` is the one column the refresh job scans:
 * the next time this row needs a refresh, keep-alive, retry, or (while leased) lease expiry.
 */
@Entity({ name: 'connections' })
@Check('connections_status_check', `status IN ('active', 'refresh_failing', 'reauth_required')`)
@Index('connections_due_at_idx', ['dueAt'], { where: 'due_at IS NOT NULL' })
@Index('connections_status_user_id_idx', ['status', 'userId'])
@Index('connections_account_idx', ['atlassianAccountId'])
@Index('connections_consented_at_idx', ['consentedAt'])
@Index('connections_reconsent_pending_idx', ['consentedAt'], {
  where: `status <> 'reauth_required' AND reconsent_due_sent_for IS DISTINCT FROM consented_at`,
})
@Index('connections_scopes_outdated_pending_idx', ['id'], {
  where: `status <> 'reauth_required' AND missing_scopes <> '{}' AND (scopes_outdated_sent_for, scopes_outdated_sent_scopes) IS DISTINCT FROM (consented_at, missing_scopes)`,
})
export class ConnectionEntity {
  @PrimaryGeneratedColumn('uuid')
  id: string;

  @Column({ name: 'user_id', type: 'text', unique: true })
  userId: string;

  @Column({ name: 'atlassian_account_id', type: 'text' })
  atlassianAccountId: string;

  @Column({ type: 'text' })
  status: ConnectionStatus;

  @Column({ type: 'text', array: true, default: () => "'{}'" })
  scopes: string[];

  @Column({ name: 'access_token_ciphertext', type: 'text', nullable: true })
  accessTokenCiphertext: string | null;

  @Column({ name: 'access_token_key_id', type: 'text', nullable: true })
  accessTokenKeyId: string | null;

  @Column({ name: 'refresh_token_ciphertext', type: 'text', nullable: true })
  refreshTokenCiphertext: string | null;

  @Column({ name: 'refresh_token_key_id', type: 'text', nullable: true })
  refreshTokenKeyId: string | null;

  @Column({ name: 'access_token_expires_at', type: 'timestamptz', nullable: true })
  accessTokenExpiresAt: Date | null;

  @Column({ name: 'refresh_token_issued_at', type: 'timestamptz', nullable: true })
  refreshTokenIssuedAt: Date | null;

  @Column({ name: 'last_refreshed_at', type: 'timestamptz', nullable: true })
  lastRefreshedAt: Date | null;

  @Column({ type: 'integer', default: 1 })
  version: number;

  @Column({ name: 'due_at', type: 'timestamptz', nullable: true })
  dueAt: Date | null;

  @Column({ name: 'lease_id', type: 'uuid', nullable: true })
  leaseId: string | null;

  @Column({ name: 'lease_owner', type: 'text', nullable: true })
  leaseOwner: string | null;

  @Column({ name: 'lease_expires_at', type: 'timestamptz', nullable: true })
  leaseExpiresAt: Date | null;

  @Column({ name: 'refresh_attempted_at', type: 'timestamptz', nullable: true })
  refreshAttemptedAt: Date | null;

  @Column({ name: 'consecutive_failures', type: 'integer', default: 0 })
  consecutiveFailures: number;

  @Column({ name: 'last_error', type: 'text', nullable: true })
  lastError: string | null;

  @Column({ name: 'last_error_at', type: 'timestamptz', nullable: true })
  lastErrorAt: Date | null;

  @Column({ name: 'resources_fetched_at', type: 'timestamptz', nullable: true })
  resourcesFetchedAt: Date | null;

  /** When the current grant was consented to (a reconnect resets it); Atlassian ends the grant 365 days later. */
  @Column({ name: 'consented_at', type: 'timestamptz', default: () => 'now()' })
  consentedAt: Date;

  /** Scopes ATLASSIAN_SCOPES asks for that the grant lacks, sorted; recomputed at start and with every grant's answer. */
  @Column({ name: 'missing_scopes', type: 'text', array: true, default: () => "'{}'" })
  missingScopes: string[];

  /** The consent (its consentedAt) that `connection.reconsent_due` was sent for. */
  @Column({ name: 'reconsent_due_sent_for', type: 'timestamptz', nullable: true })
  reconsentDueSentFor: Date | null;

  /** The consent and the missing scopes that `connection.scopes_outdated` was sent for. */
  @Column({ name: 'scopes_outdated_sent_for', type: 'timestamptz', nullable: true })
  scopesOutdatedSentFor: Date | null;

  @Column({ name: 'scopes_outdated_sent_scopes', type: 'text', array: true, nullable: true })
  scopesOutdatedSentScopes: string[] | null;

  @Column({ name: 'created_at', type: 'timestamptz', default: () => 'now()' })
  createdAt: Date;

  @Column({ name: 'updated_at', type: 'timestamptz', default: () => 'now()' })
  updatedAt: Date;
}
