import { Injectable } from '@nestjs/common';
import { AtlassianStrategy } from './atlassian.strategy.js';
import { ConnectTicketsService } from './connect-tickets.service.js';
import { OAuthStatesService } from './oauth-states.service.js';
import { looksLikeSecret, SecretGenerator } from './secrets.js';

export interface AuthorizationStart {
  /** Atlassian's /authorize, with every parameter. */
  readonly location: string;
  /** The browser cookie's value: the state is bound to it. */
  readonly browserSecret: string;
}

/** `GET /auth/atlassian/start`: trades a ticket for a state bound to its userId and to this browser. */
@Injectable()
export class AuthorizationService {
  constructor(
    private readonly tickets: ConnectTicketsService,
    private readonly states: OAuthStatesService,
    private readonly strategy: AtlassianStrategy,
    private readonly secrets: SecretGenerator,
  ) {}

  async start(ticket: string, browserSecret: string | undefined): Promise<AuthorizationStart> {
    const userId = await this.tickets.redeem(ticket);
    // A browser keeps its cookie across sign-ins, so a second tab's start does not break the first tab's callback.
    const browser = browserSecret !== undefined && looksLikeSecret(browserSecret) ? browserSecret : this.secrets.secret();
    const state = await this.states.issue(userId, browser);
    return { location: this.strategy.authorizationUrl(state), browserSecret: browser };
  }
}
