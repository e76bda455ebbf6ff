import { Injectable, Logger } from '@nestjs/common';
import { Clock } from '../common/clock.js';
import { ConnectionNotFoundError, DomainError, ReauthRequiredError } from '../common/errors.js';
import { ConnectionCache } from '../connection-store/connection-cache.js';
import { connectionTokenContext } from '../connection-store/connection-token-context.js';
import { TokenCipher, TokenDecryptionError } from '../crypto/token-cipher.js';
import { shortId } from '../logging/redact.js';
import type { AccessTokenResponseDto } from './access-token.dto.js';
import { REFRESH_POLICY } from './refresh.policy.js';
import { RefreshMetrics } from './refresh.metrics.js';
import { ConnectionsRepository } from '../connection-store/connections.repository.js';
import type { TokenState } from '../connection-store/token-state.js';
import { RefreshService, type OnDemandOutcome } from './refresh.service.js';

/** A token closer to its expiry than this is not handed out even when refreshing failed: the caller could not use it. */
const STILL_USABLE_MS = 10_000;
const DEFAULT_RETRY_AFTER_SECONDS = 5;

export interface AccessTokenOptions {
  /** Refresh now: Atlassian refused the caller's token before its expiresAt. */
  readonly forceRefresh?: boolean;
  /**
   * A product call's token: one this replica read lately and has not heard change since (ConnectionCache) will do,
   * while it stays valid long enough; anything else reads the database as usual.
   */
  readonly cached?: boolean;
}

/**
 * `POST /v1/users/{userId}/access-token`: the stored token when it stays valid long enough, else a refresh now,
 * shared with any refresh of the same connection already running here or on another replica.
 */
@Injectable()
export class AccessTokenService {
  private readonly logger = new Logger(AccessTokenService.name);

  constructor(
    private readonly repository: ConnectionsRepository,
    private readonly refresh: RefreshService,
    private readonly cipher: TokenCipher,
    private readonly clock: Clock,
    private readonly metrics: RefreshMetrics,
    private readonly cache: ConnectionCache,
  ) {}

  async accessToken(userId: string, minValiditySeconds: number, options: AccessTokenOptions = {}): Promise<AccessTokenResponseDto> {
    const forced = options.forceRefresh === true;
    if (options.cached === true && !forced) {
      const known = this.cache.token(userId);
      if (known && this.validFor(known, minValiditySeconds * 1000)) return this.reveal(known);
    }
    const seen = await this.read(userId);
    if (this.refreshedJustNow(seen) || (!forced && this.validFor(seen, minValiditySeconds * 1000))) return this.reveal(seen);
    const outcome = await this.refresh.refreshNow(userId, seen);
    const current = await this.read(userId);
    // A fresh token is the best there is, and while Atlassian is failing a token that still works beats none; but a
    // forcing caller was refused the token it saw, so only a newer one will do.
    const renewed = !forced || current.version !== seen.version;
    if (renewed && this.validFor(current, STILL_USABLE_MS)) return this.reveal(current);
    throw this.unavailable(outcome, forced);
  }

  private async read(userId: string): Promise<TokenState> {
    // Every call as a user reads its token here (the API's route, the proxy, the example route) unless cached.
    const ticket = this.cache.ticket();
    const state = await this.repository.findTokenState(userId);
    if (!state) throw new ConnectionNotFoundError(userId);
    if (state.status === 'reauth_required') throw new ReauthRequiredError(userId);
    this.cache.rememberToken(ticket, userId, state);
    return state;
  }

  private validFor(state: TokenState, ms: number): boolean {
    return (
      state.accessToken !== null &&
      state.accessTokenExpiresAt !== null &&
      state.accessTokenExpiresAt.getTime() - this.clock.now().getTime() >= ms
    );
  }

  /**
   * A refresh issued the stored token moments ago: another refresh could not give a longer-lived one, and callers
   * that force at once (all refused the same old token) share this one instead of each burning a refresh. A token
   * from the consent itself was not shared by anyone, so forcing still refreshes it.
   */
  private refreshedJustNow(state: TokenState): boolean {
    const { lastRefreshedAt, consentedAt } = state;
    if (lastRefreshedAt === null || lastRefreshedAt <= consentedAt) return false;
    const age = this.clock.now().getTime() - lastRefreshedAt.getTime();
    return age < REFRESH_POLICY.minRefreshSpacingMs && this.validFor(state, STILL_USABLE_MS);
  }

  private reveal(state: TokenState): AccessTokenResponseDto {
    let accessToken: string;
    try {
      accessToken = this.cipher.open(state.accessToken!, connectionTokenContext(state.id, 'access_token'));
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

  private unavailable(outcome: OnDemandOutcome, forced: boolean): DomainError {
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
    const stored = forced ? 'the stored one was refused' : 'the stored one has expired';
    return new DomainError(
      'atlassian_unavailable',
      `Atlassian could not refresh the access token right now and ${stored}; try again shortly.`,
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
