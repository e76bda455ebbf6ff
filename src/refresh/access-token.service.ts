import { Injectable } from '@nestjs/common';
import { Clock } from '../common/clock.js';
import { ConnectionNotFoundError, DomainError, ReauthRequiredError } from '../common/errors.js';
import { connectionTokenContext } from '../connections/connection-token-context.js';
import { TokenCipher } from '../crypto/token-cipher.js';
import type { AccessTokenResponseDto } from './access-token.dto.js';
import { RefreshRepository, type TokenState } from './refresh.repository.js';
import { RefreshService, type OnDemandOutcome } from './refresh.service.js';

/** A token closer to its expiry than this is not handed out even when refreshing failed: the caller could not use it. */
const STILL_USABLE_MS = 10_000;
const DEFAULT_RETRY_AFTER_SECONDS = 5;

/**
 * `POST /v1/users/{userId}/access-token`: the stored token when it stays valid long enough, else a refresh now,
 * shared with any refresh of the same connection already running here or on another replica.
 */
@Injectable()
export class AccessTokenService {
  constructor(
    private readonly repository: RefreshRepository,
    private readonly refresh: RefreshService,
    private readonly cipher: TokenCipher,
    private readonly clock: Clock,
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
    return {
      accessToken: this.cipher.open(state.accessToken!, connectionTokenContext(state.id, 'access_token')),
      expiresAt: state.accessTokenExpiresAt!.toISOString(),
    };
  }

  private unavailable(outcome: OnDemandOutcome): DomainError {
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
