import type { SealedValue } from '../crypto/token-cipher.js';
import type { ConnectionStatus } from './connection.entity.js';

/** What a call as a user reads of the user's connection: its status and access token (still sealed), and the refresh bookkeeping. */
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
