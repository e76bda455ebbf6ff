import { Injectable } from '@nestjs/common';
import { PassportStrategy } from '@nestjs/passport';
import type { Request } from 'express';
import passport from 'passport';
import { Strategy as OAuth2Strategy } from 'passport-oauth2';
import { AtlassianClient } from '../atlassian/atlassian.client.js';
import type { TokenSet } from '../atlassian/atlassian.types.js';
import { AppConfig } from '../config/app-config.js';
import { parseCallbackParams } from './browser-params.js';
import { CallbackService, type ConnectedUser, endedWithoutCode } from './callback.service.js';
import { ConnectFailure } from './connect-failure.js';
import { OAuthStateStore } from './oauth-state.store.js';

export const ATLASSIAN_AUDIENCE = 'api.atlassian.com';
export const ATLASSIAN_STRATEGY = 'atlassian';

/** Which route passport is driving: the start, which sends the browser to Atlassian, or the callback. */
export type AtlassianStep = 'authorize' | 'callback';

type TokenCallback = (error: Error | null, accessToken?: string, refreshToken?: string, tokens?: TokenSet) => void;

export interface AtlassianAuthenticateOptions {
  readonly step: AtlassianStep;
}

/**
 * Atlassian's 3LO as passport-oauth2 strategy `atlassian`, which AtlassianStartGuard and AtlassianCallbackGuard run.
 *
 * The start builds the authorization request (the scopes, offline_access and read:me always among them, the callback
 * URL exactly as configured, `response_type=code`, Atlassian's `audience` and `prompt=consent`) around a state from
 * OAuthStateStore. The callback spends that state through the same store, then exchanges the code once, as a JSON body
 * through AtlassianClient (passport-oauth2 would post a form and lose Atlassian's error, which the diagnosis of a
 * rejected code reads), and `validate` stores the connection.
 *
 * What passport-oauth2 decides by itself is decided here first: it would read `error=` before the state and treat a
 * callback without a code as a new start, so those answers spend their state here and end the sign-in; and the start
 * refuses an address carrying an answer from Atlassian, which passport-oauth2 would take for a callback.
 */
// 6: passport-oauth2 passes the token answer (`tokens` of validate) only to a verify function of six parameters.
@Injectable()
export class AtlassianStrategy extends PassportStrategy(OAuth2Strategy, ATLASSIAN_STRATEGY, 6) {
  constructor(
    config: AppConfig,
    private readonly states: OAuthStateStore,
    private readonly callbacks: CallbackService,
    atlassian: AtlassianClient,
  ) {
    super({
      authorizationURL: `${config.atlassian.authUrl}/authorize`,
      tokenURL: `${config.atlassian.authUrl}/oauth/token`,
      clientID: config.atlassian.clientId,
      clientSecret: config.atlassian.clientSecret,
      callbackURL: config.atlassian.callbackUrl,
      scope: [...config.atlassian.scopes],
      scopeSeparator: ' ',
      store: states,
      passReqToCallback: true,
      skipUserProfile: true,
    });
    // Exactly one attempt, as JSON with the configured redirect_uri (the one /authorize got): a code is single-use, so
    // a retry could only fail and hide the first answer. Its error goes on as thrown, for the diagnosis.
    const exchange = (code: string, _params: unknown, done: TokenCallback): void => {
      atlassian.exchangeCode(code).then(
        (tokens) => done(null, tokens.accessToken, tokens.refreshToken ?? '', tokens),
        (error: Error) => done(error),
      );
    };
    this._oauth2.getOAuthAccessToken = exchange as typeof this._oauth2.getOAuthAccessToken;
  }

  /**
   * Makes this application's strategy the one passport finds under `atlassian`. Passport keeps strategies by name in
   * one registry for the whole process, so with several applications in one process (replicas in a test) the last
   * one constructed would otherwise answer the requests of all of them, with its own callback URL and database.
   */
  register(): void {
    passport.use(ATLASSIAN_STRATEGY, this);
  }

  override authorizationParams(): Record<string, string> {
    return { audience: ATLASSIAN_AUDIENCE, prompt: 'consent' };
  }

  override authenticate(req: Request, options: AtlassianAuthenticateOptions): void {
    try {
      if (options.step === 'authorize') this.refuseAnswerOnStart(req);
      else if (this.endsWithoutExchange(req)) return;
    } catch (error) {
      this.error(error);
      return;
    }
    super.authenticate(req, options);
  }

  /** passport-oauth2's verify callback: the code has been exchanged for these tokens. */
  validate(req: Request, _accessToken: string, _refreshToken: string, tokens: TokenSet): Promise<ConnectedUser> {
    const state = this.states.spentBy(req);
    if (!state) throw new Error('The callback reached the exchange without spending its state');
    return this.callbacks.connect(state, tokens);
  }

  private refuseAnswerOnStart(req: Request): void {
    const query = req.query as Record<string, unknown>;
    if (query.code !== undefined || query.error !== undefined) {
      throw new ConnectFailure(
        'invalid_request',
        'A connect link carries a ticket, and this address also carries an answer from Atlassian, which belongs to the callback.',
      );
    }
  }

  /**
   * Callbacks that carry no code to exchange (an error, or nothing) spend their state, then end; one with a code goes
   * on through passport-oauth2. Every parameter is checked first, and a callback without a state touches nothing.
   */
  private endsWithoutExchange(req: Request): boolean {
    const params = parseCallbackParams(req.query);
    if (!params.state) {
      throw new ConnectFailure(
        'state_missing',
        'This address is where Atlassian sends you back after signing in, and the answer carries no state.',
      );
    }
    if (params.error === undefined && params.code) return false;
    this.states.verify(req, params.state, (error) => this.error(error ?? endedWithoutCode(params)));
    return true;
  }
}
