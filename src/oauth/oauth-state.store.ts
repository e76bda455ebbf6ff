import { Injectable } from '@nestjs/common';
import type { CookieOptions, Request } from 'express';
import type { Metadata, StateStore, StateStoreStoreCallback, StateStoreVerifyCallback } from 'passport-oauth2';
import { AppConfig } from '../config/app-config.js';
import { BROWSER_COOKIE, browserCookieOptions, browserSecretOf } from './browser-cookie.js';
import { parseStartParams } from './browser-params.js';
import { ConnectTicketsService } from './connect-tickets.service.js';
import type { ConsumedState } from './oauth-states.repository.js';
import { OAuthStatesService } from './oauth-states.service.js';
import { looksLikeSecret, SecretGenerator } from './secrets.js';

/**
 * passport-oauth2's `store` for Atlassian's `state`, kept in Postgres (oauth_states) rather than in a session.
 *
 * `store` trades the connect link's ticket for a state bound to its userId and to this browser (the browser cookie,
 * set here, on the redirect passport is about to send). `verify` spends the state, in one statement, before passport
 * exchanges the code: a state works once, only in the browser that started, within 10 minutes. The state it spent is
 * kept for the rest of that request (`spentBy`), for the connection and for recording how the callback ended.
 */
@Injectable()
export class OAuthStateStore implements StateStore {
  private readonly cookieOptions: CookieOptions;
  private readonly spent = new WeakMap<Request, ConsumedState>();

  constructor(
    private readonly tickets: ConnectTicketsService,
    private readonly states: OAuthStatesService,
    private readonly secrets: SecretGenerator,
    config: AppConfig,
  ) {
    this.cookieOptions = browserCookieOptions(config);
  }

  // passport-oauth2 picks the form to call by the number of parameters: both methods take the metadata.
  store(req: Request, done: StateStoreStoreCallback): void;
  store(req: Request, meta: Metadata, done: StateStoreStoreCallback): void;
  store(req: Request, metaOrDone: Metadata | StateStoreStoreCallback, done?: StateStoreStoreCallback): void {
    const callback = typeof metaOrDone === 'function' ? metaOrDone : done!;
    this.issue(req).then(
      (state) => callback(null, state),
      (error: Error) => callback(error, undefined),
    );
  }

  verify(req: Request, state: string, done: StateStoreVerifyCallback): void;
  verify(req: Request, state: string, meta: Metadata, done: StateStoreVerifyCallback): void;
  verify(req: Request, state: string, metaOrDone: Metadata | StateStoreVerifyCallback, done?: StateStoreVerifyCallback): void {
    const callback = typeof metaOrDone === 'function' ? metaOrDone : done!;
    this.states.consume(state, browserSecretOf(req)).then(
      (consumed) => {
        this.spent.set(req, consumed);
        callback(null, true, consumed);
      },
      (error: Error) => callback(error, false, undefined),
    );
  }

  /** The state this request's callback spent, if it got that far. */
  spentBy(req: Request): ConsumedState | undefined {
    return this.spent.get(req);
  }

  private async issue(req: Request): Promise<string> {
    const userId = await this.tickets.redeem(parseStartParams(req.query).ticket);
    // A browser keeps its cookie across sign-ins, so a second tab's start does not break the first tab's callback.
    const known = browserSecretOf(req);
    const browser = known !== undefined && looksLikeSecret(known) ? known : this.secrets.secret();
    const state = await this.states.issue(userId, browser);
    req.res?.cookie(BROWSER_COOKIE, browser, this.cookieOptions);
    return state;
  }
}
