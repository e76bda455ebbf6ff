import { Injectable, Logger } from '@nestjs/common';
import { InternalOAuthError } from 'passport-oauth2';
import { AtlassianClient } from '../atlassian/atlassian.client.js';
import { AtlassianError } from '../atlassian/atlassian.errors.js';
import type { AccessibleResource, TokenSet } from '../atlassian/atlassian.types.js';
import { Clock } from '../common/clock.js';
import { ConnectionsService } from '../connections/connections.service.js';
import { shortId } from '../logging/redact.js';
import type { CallbackParams } from './browser-params.js';
import { diagnoseRejectedCode } from './callback-diagnosis.js';
import { ConnectFailure } from './connect-failure.js';
import type { ConsumedState } from './oauth-states.repository.js';
import { OAuthStatesService } from './oauth-states.service.js';

export interface ConnectedUser {
  readonly userId: string;
  readonly atlassianAccountId: string;
  readonly accountName?: string;
  readonly sites: readonly AccessibleResource[];
  /** The user was connected before; the new consent replaced the old tokens. */
  readonly replaced: boolean;
}

type Step = 'exchange' | 'profile' | 'sites';

const STEP_NAMES: Record<Step, string> = {
  exchange: 'Exchanging the sign-in code',
  profile: 'Reading your Atlassian account',
  sites: 'Listing your Atlassian sites',
};

/**
 * `GET /auth/atlassian/callback`, the steps AtlassianStrategy leaves to the service: with the state spent and the code
 * exchanged, read the account and its sites and store the connection; then record how the callback ended, explaining
 * a rejected code. Any failure stores nothing and leaves the user's existing connection as it was.
 */
@Injectable()
export class CallbackService {
  private readonly logger = new Logger(CallbackService.name);

  constructor(
    private readonly states: OAuthStatesService,
    private readonly atlassian: AtlassianClient,
    private readonly connections: ConnectionsService,
    private readonly clock: Clock,
  ) {}

  async connect(state: ConsumedState, tokens: TokenSet): Promise<ConnectedUser> {
    if (!tokens.refreshToken) {
      throw new ConnectFailure(
        'offline_access_missing',
        'Atlassian answered without a refresh token: the app did not get offline_access, so the connection would die within an hour.',
      );
    }
    const account = await this.call('profile', () => this.atlassian.me(tokens.accessToken));
    const sites = await this.call('sites', () => this.atlassian.accessibleResources(tokens.accessToken));
    const stored = await this.connections.storeConnected({
      userId: state.userId,
      atlassianAccountId: account.accountId,
      accessToken: tokens.accessToken,
      refreshToken: tokens.refreshToken,
      expiresInSeconds: tokens.expiresInSeconds,
      scopes: tokens.scopes,
      resources: sites,
    });
    return { userId: state.userId, atlassianAccountId: account.accountId, accountName: account.name, sites, replaced: stored.replaced };
  }

  /**
   * Ends a callback that spent its state, with the connected user or the error that stopped it (an exchange's error
   * arrives wrapped by passport-oauth2, Atlassian's answer inside): records the outcome, answers the user or throws
   * the failure to show.
   */
  async finish(
    state: ConsumedState,
    code: string | undefined,
    result: { user: ConnectedUser } | { error: unknown },
  ): Promise<ConnectedUser> {
    if ('user' in result) {
      const connected = result.user;
      await this.states.recordOutcome(state, 'connected');
      this.logger.log(
        `Connected user ${shortId(state.userId)} to Atlassian account ${shortId(connected.atlassianAccountId)} ` +
          `(${connected.sites.length} sites${connected.replaced ? ', replacing the previous tokens' : ''})`,
      );
      return connected;
    }
    const error =
      result.error instanceof InternalOAuthError ? this.exchangeFailure(state, code ?? '', result.error.oauthError) : result.error;
    const outcome = error instanceof ConnectFailure ? error.code : 'internal_error';
    await this.states.recordOutcome(state, outcome);
    if (error instanceof ConnectFailure) {
      const causes = error.diagnosis?.causes.map((c) => `${c.cause}=${c.verdict}`).join(', ');
      this.logger.warn(`Callback for user ${shortId(state.userId)} refused: ${outcome}${causes ? ` (${causes})` : ''}`);
    }
    throw error;
  }

  private exchangeFailure(state: ConsumedState, code: string, error: unknown): unknown {
    if (error instanceof AtlassianError && (error.kind === 'invalid_grant' || error.kind === 'invalid_request')) {
      const diagnosis = diagnoseRejectedCode({
        atlassianError: error.details.error ?? error.kind,
        atlassianDescription: error.details.description,
        stateUsedBefore: false,
        secondsSinceAuthorize: (this.clock.now().getTime() - state.createdAt.getTime()) / 1000,
        authorizeRedirectUri: state.redirectUri,
        exchangeRedirectUri: this.atlassian.redirectUri,
        code,
      });
      return new ConnectFailure('invalid_grant', diagnosis.summary, diagnosis);
    }
    return stepFailure('exchange', error);
  }

  private async call<T>(step: Step, work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (error) {
      throw stepFailure(step, error);
    }
  }
}

/** How a callback that brought no code ends: Atlassian answered with an error, or with nothing. */
export function endedWithoutCode(params: CallbackParams): ConnectFailure {
  if (params.error !== undefined) return authorizationRefused(params.error, params.errorDescription);
  return new ConnectFailure('code_missing', 'Atlassian sent you back without a code and without an error.');
}

function authorizationRefused(error: string, description: string | undefined): ConnectFailure {
  const said = description ? ` (Atlassian: ${description})` : '';
  if (error === 'access_denied') {
    return new ConnectFailure('access_denied', `You chose not to give this app access to your Atlassian account${said}.`);
  }
  return new ConnectFailure('authorization_failed', `Atlassian answered ${error} instead of a code${said}.`);
}

function stepFailure(step: Step, error: unknown): unknown {
  if (!(error instanceof AtlassianError)) return error;
  const detail = `${STEP_NAMES[step]}: ${error.message}.`;
  switch (error.kind) {
    case 'client_unauthorized':
    case 'unauthorized_client':
      return new ConnectFailure('configuration_error', detail);
    case 'rate_limited':
    case 'unavailable':
    case 'timeout':
    case 'network':
      return new ConnectFailure('atlassian_unavailable', detail);
    case 'token_rejected':
    case 'forbidden':
    case 'not_found':
      return new ConnectFailure(step === 'profile' ? 'profile_unavailable' : 'atlassian_error', detail);
    default:
      return new ConnectFailure('atlassian_error', detail);
  }
}
