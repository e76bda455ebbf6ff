import { Injectable, Logger } from '@nestjs/common';
import { Clock } from '../common/clock.js';
import { AppConfig } from '../config/app-config.js';
import { shortId } from '../logging/redact.js';
import { ConnectFailure, type ConnectFailureCode } from './connect-failure.js';
import { type ConsumedState, OAuthStatesRepository } from './oauth-states.repository.js';
import { hashSecret, looksLikeSecret, SecretGenerator } from './secrets.js';

/** About as long as Atlassian keeps a code alive: a sign-in that takes longer would fail at the exchange anyway. */
export const STATE_TTL_SECONDS = 600;

export type StateOutcome = 'connected' | ConnectFailureCode;

/**
 * The `state` of each authorization request: unguessable, stored hashed, single-use, expiring, and bound to the
 * userId of the ticket and to the browser that started (the hash of its browser cookie).
 */
@Injectable()
export class OAuthStatesService {
  private readonly logger = new Logger(OAuthStatesService.name);

  constructor(
    private readonly states: OAuthStatesRepository,
    private readonly secrets: SecretGenerator,
    private readonly clock: Clock,
    private readonly config: AppConfig,
  ) {}

  async issue(userId: string, browserSecret: string): Promise<string> {
    const state = this.secrets.secret();
    const createdAt = this.clock.now();
    await this.states.insert({
      stateHash: hashSecret(state),
      userId,
      browserHash: hashSecret(browserSecret),
      redirectUri: this.config.atlassian.callbackUrl,
      createdAt,
      expiresAt: new Date(createdAt.getTime() + STATE_TTL_SECONDS * 1000),
    });
    return state;
  }

  /**
   * Spends the state, before anything is sent to Atlassian, so that each code is exchanged at most once. A state that
   * cannot be spent is explained; it stays untouched (it may belong to another browser's sign-in).
   */
  async consume(state: string, browserSecret: string | undefined): Promise<ConsumedState> {
    if (!looksLikeSecret(state)) throw this.refuse('state_invalid', 'The sign-in answer carries a state this service never issued.');
    const stateHash = hashSecret(state);
    const now = this.clock.now();
    if (browserSecret !== undefined) {
      const consumed = await this.states.consume(stateHash, hashSecret(browserSecret), now);
      if (consumed) return consumed;
    }
    const known = await this.states.findByHash(stateHash);
    if (!known) throw this.refuse('state_invalid', 'The sign-in answer carries a state this service never issued.');
    if (known.consumedAt) {
      if (known.outcome && browserSecret !== undefined && hashSecret(browserSecret) === known.browserHash) {
        this.logger.log(`Callback for user ${shortId(known.userId)} opened again by the browser that finished it (${known.outcome})`);
        throw new ConnectFailure('state_used', 'This sign-in has already finished.', undefined, known.outcome as StateOutcome);
      }
      throw this.refuse(
        'state_used',
        'The answer from Atlassian in this address has already been used once, and each works only once, so opening it again changed nothing.',
        known.userId,
      );
    }
    if (known.expiresAt.getTime() <= now.getTime()) {
      throw this.refuse(
        'state_expired',
        'More than 10 minutes passed between opening the connect link and coming back from Atlassian.',
        known.userId,
      );
    }
    throw this.refuse(
      'browser_mismatch',
      browserSecret === undefined
        ? 'This browser did not send the cookie set when the sign-in started (another browser, a private window, or cookies blocked).'
        : 'The sign-in was started in another browser than the one that came back from Atlassian.',
      known.userId,
    );
  }

  /** Kept for explaining a callback afterwards; losing it must not turn a finished sign-in into a failure. */
  async recordOutcome(state: ConsumedState, outcome: StateOutcome): Promise<void> {
    try {
      await this.states.recordOutcome(state.id, outcome);
    } catch (error) {
      this.logger.warn(`Could not record outcome ${outcome} of state ${shortId(state.id)}: ${(error as Error).name}`);
    }
  }

  private refuse(code: ConnectFailureCode, detail: string, userId?: string): ConnectFailure {
    this.logger.warn(`Callback${userId === undefined ? '' : ` for user ${shortId(userId)}`} refused: ${code}`);
    return new ConnectFailure(code, detail);
  }
}
