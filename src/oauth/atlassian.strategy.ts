import { Injectable } from '@nestjs/common';
import type { Request } from 'express';
import { Strategy as OAuth2Strategy, type VerifyCallback } from 'passport-oauth2';
import { AppConfig } from '../config/app-config.js';

export const ATLASSIAN_AUDIENCE = 'api.atlassian.com';

/**
 * Atlassian's 3LO on passport-oauth2, used to build the authorization request: the scopes (offline_access and read:me
 * always among them), the callback URL exactly as configured, `response_type=code`, and Atlassian's own
 * `audience` and `prompt=consent`.
 *
 * The callback does not go through passport: passport-oauth2 exchanges codes with a form-encoded body where
 * Atlassian documents JSON, reads `error=` before checking the state, and keeps nothing with which to explain a
 * rejected code. CallbackService spends the state first and exchanges through AtlassianClient.
 */
@Injectable()
export class AtlassianStrategy extends OAuth2Strategy {
  constructor(config: AppConfig) {
    super(
      {
        authorizationURL: `${config.atlassian.authUrl}/authorize`,
        tokenURL: `${config.atlassian.authUrl}/oauth/token`,
        clientID: config.atlassian.clientId,
        clientSecret: config.atlassian.clientSecret,
        callbackURL: config.atlassian.callbackUrl,
        scope: [...config.atlassian.scopes],
        scopeSeparator: ' ',
      },
      callbacksAreHandledElsewhere,
    );
    this.name = 'atlassian';
  }

  override authorizationParams(): Record<string, string> {
    return { audience: ATLASSIAN_AUDIENCE, prompt: 'consent' };
  }

  /**
   * Where to send the browser for a state already stored. Passport hands a strategy `redirect` and `error` for one
   * request by deriving an object from it; this does the same, without a response to write to.
   */
  authorizationUrl(state: string): string {
    let location: string | undefined;
    let failure: unknown;
    const attempt: OAuth2Strategy = Object.create(this);
    attempt.redirect = (url: string) => {
      location = url;
    };
    attempt.error = (error: unknown) => {
      failure = error;
    };
    attempt.authenticate({ query: {} } as Request, { state });
    if (location === undefined) throw failure ?? new Error('passport-oauth2 built no authorization URL');
    return location;
  }
}

/** passport-oauth2 insists on a verify callback; it is only reached on a callback, which never comes through here. */
function callbacksAreHandledElsewhere(_accessToken: string, _refreshToken: string, _profile: unknown, done: VerifyCallback): void {
  done(new Error('Atlassian callbacks are handled by CallbackService, not by passport'));
}
