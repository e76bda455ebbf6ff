import { Injectable, Logger } from '@nestjs/common';
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
 * `GET /auth/atlassian/callback`: spends the state, then exchanges the code (once), reads the account and its sites,
 * and stores the connection. Any failure stores nothing and leaves the user's existing connection as it was.
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

  async complete(params: CallbackParams, browserSecret: string | undefined): Promise<ConnectedUser> {
    if (!params.state) {
      throw new ConnectFailure(
        'state_missing',
        'This address is where Atlassian sends you back after signing in, and the answer carries no state.',
      );
    }
    const state = await this.states.consume(params.state, browserSecret);
    try {
      const connected = await this.connect(state, params);
      await this.states.recordOutcome(state, 'connected');
      this.logger.log(
        `Connected user ${shortId(state.userId)} to Atlassian account ${shortId(connected.atlassianAccountId)} ` +
          `(${connected.sites.length} sites${connected.replaced ? ', replacing the previous tokens' : ''})`,
      );
      return connected;
    } catch (error) {
      const outcome = error instanceof ConnectFailure ? error.code : 'internal_error';
      await this.states.recordOutcome(state, outcome);
      if (error instanceof ConnectFailure) {
        const causes = error.diagnosis?.causes.map((c) => `${c.cause}=${c.verdict}`).join(', ');
        this.logger.warn(`Callback for user ${shortId(state.userId)} refused: ${outcome}${causes ? ` (${causes})` : ''}`);
      }
      throw error;
    }
  }

  private async connect(state: ConsumedState, params: CallbackParams): Promise<ConnectedUser> {
    if (params.error !== undefined) throw authorizationRefused(params.error, params.errorDescription);
    if (!params.code) throw new ConnectFailure('code_missing', 'Atlassian sent you back without a code and without an error.');
    const tokens = await this.exchange(state, params.code);
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

  /** Exactly one attempt: a code is single-use, so a retry could only fail and hide the first answer. */
  private async exchange(state: ConsumedState, code: string): Promise<TokenSet> {
    try {
      return await this.atlassian.exchangeCode(code);
    } catch (error) {
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
        throw new ConnectFailure('invalid_grant', diagnosis.summary, diagnosis);
      }
      throw stepFailure('exchange', error);
    }
  }

  private async call<T>(step: Step, work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (error) {
      throw stepFailure(step, error);
    }
  }
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
