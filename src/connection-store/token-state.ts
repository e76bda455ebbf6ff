import type { SealedValue } from '../crypto/token-cipher.js';
import type { ConnectionStatus } from './connection.entity.js';

/** What the on-demand path reads to decide whether the stored access token will do (the token still sealed). */
export interface TokenState {
  readonly id: string;
  readonly status: ConnectionStatus;
  readonly version: number;
  readonly accessToken: SealedValue | null;
  readonly accessTokenExpiresAt: Date | null;
  readonly dueAt: Date | null;
  readonly leaseId: string | null;
  readonly leaseExpiresAt: Date | null;
  /** When the stored tokens were issued: by the consent (then equal to consentedAt) or by a refresh. */
  readonly lastRefreshedAt: Date | null;
  readonly consentedAt: Date;
}
