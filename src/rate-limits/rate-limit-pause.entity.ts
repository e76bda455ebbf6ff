import { Check, Column, Entity, PrimaryColumn } from 'typeorm';
import type { ScopeKind } from './pause-scopes.js';

/**
 * A scope (the product app-wide, a site, an issue's writes) held back after Atlassian answered 429, shared by every
 * replica. Rows outlive their pause only until the next pause is written.
 */
@Entity({ name: 'atlassian_rate_limit_pauses' })
@Check('atlassian_rate_limit_pauses_kind_check', `kind IN ('app', 'site', 'issue')`)
export class RateLimitPauseEntity {
  @PrimaryColumn({ type: 'text' })
  scope: string;

  @Column({ type: 'text' })
  kind: ScopeKind;

  @Column({ type: 'text' })
  product: string;

  @Column({ type: 'text', nullable: true })
  reason: string | null;

  @Column({ name: 'paused_until', type: 'timestamptz' })
  pausedUntil: Date;

  @Column({ name: 'paused_at', type: 'timestamptz' })
  pausedAt: Date;
}
