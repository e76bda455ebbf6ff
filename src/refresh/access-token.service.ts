import { Injectable, Logger } from '@nestjs/common';
import { Clock } from '../common/clock.js';
import { ConnectionNotFoundError, DomainError, ReauthRequiredError } from '../common/errors.js';
import { TokenCipher, TokenDecryptionError } from '../crypto/token-cipher.js';
import { shortId } from '../logging/redact.js';
import type { AccessTokenResponseDto } from './access-token.dto.js';
import { RefreshMetrics } from './refresh.metrics.js';
import { RefreshRepository, type TokenState } from './refresh.repository.js';
import { RefreshService, sealContext, type OnDemandOutcome } from './refresh.service.js';

/** A token closer to its expiry than this is not handed out even when refreshing failed: the caller could not use it. */
const STILL_USABLE_MS = 10_000;
const DEFAULT_RETRY_AFTER_SECONDS = 5;

/**
 * `POST /v1/users/{userId}/access-token`: the stored token when it stays valid long enough, else a refresh now,
 * shared with any refresh of the same connection already running here or on another replica.
 */
@Injectable()
export class AccessTokenService {
  private readonly logger = new Logger(AccessTokenService.name);

  constructor(
    private readonly repository: RefreshRepository,
    private readonly refresh: RefreshService,
    private readonly cipher: TokenCipher,
    private readonly clock: Clock,
    private readonly metrics: RefreshMetrics,
  ) {}

  async accessToken(userId: string, minValiditySeconds: number): Promise<AccessTokenResponseDto> {
    const seen = await this.read(userId);
    if (this.validFor(seen, minValiditySeconds * 1000)) return this.reveal(seen);
    const outcome = await this.refresh.refreshNow(userId, seen);
    const current = await this.read(userId);
    // A fresh token is the best there is, and while Atlassian is failing a token that still works beats none.
    if (this.validFor(current, STILL_USABLE_MS)) return this.reveal(current);
    throw this.unavailable(outcome);
  }

  private async read(userId: string): Promise<TokenState> {
    const state = await this.repository.findTokenState(userId);
    if (!state) throw new ConnectionNotFoundError(userId);
    if (state.status === 'reauth_required') throw new ReauthRequiredError(userId);
    return state;
  }

  private validFor(state: TokenState, ms: number): boolean {
    return (
      state.accessToken !== null &&
      state.accessTokenExpiresAt !== null &&
      state.accessTokenExpiresAt.getTime() - this.clock.now().getTime() >= ms
    );
  }

  private reveal(state: TokenState): AccessTokenResponseDto {
    let accessToken: string;
    try {
      accessToken = this.cipher.open(state.accessToken!, sealContext(state.id, 'access_token'));
    } catch (error) {
      if (!(error instanceof TokenDecryptionError)) throw error;
      this.metrics.recordDecryptionFailure(error.reason);
      this.logger.error(
        `Connection ${shortId(state.id)}: its access token cannot be decrypted on this replica (${error.reason}, key "${error.keyId}"); ` +
          'answered 503. Every replica needs the same TOKEN_ENCRYPTION_KEYS (see "Rotating the encryption key")',
      );
      throw undecryptable();
    }
    return { accessToken, expiresAt: state.accessTokenExpiresAt!.toISOString() };
  }

  private unavailable(outcome: OnDemandOutcome): DomainError {
    if (outcome.kind === 'released' && outcome.undecryptable) return undecryptable();
    const retryAt = 'retryAt' in outcome ? outcome.retryAt : undefined;
    const seconds = retryAt ? Math.max(1, Math.ceil((retryAt.getTime() - this.clock.now().getTime()) / 1000)) : DEFAULT_RETRY_AFTER_SECONDS;
    const headers = { 'Retry-After': String(seconds) };
    if (outcome.kind === 'credentials_rejected') {
      return new DomainError(
        'configuration_error',
        "Atlassian refuses this service's client credentials, so no token can be refreshed; the operators have been alerted.",
        headers,
      );
    }
    return new DomainError(
      'atlassian_unavailable',
      'Atlassian could not refresh the access token right now and the stored one has expired; try again shortly.',
      headers,
    );
  }
}

/** The connection is fine; this replica lacks the key its tokens were sealed with. Another replica, or a retry, may serve it. */
function undecryptable(): DomainError {
  return new DomainError(
    'token_decryption_failed',
    "This replica cannot decrypt the connection's stored tokens (sealed under an encryption key it does not have); the " +
      'connection is unchanged and the operators have been alerted. Try again shortly.',
    { 'Retry-After': String(DEFAULT_RETRY_AFTER_SECONDS) },
  );
}
