import { type ExecutionContext, Injectable } from '@nestjs/common';
import { AuthGuard } from '@nestjs/passport';
import type { Request } from 'express';
import { type AtlassianAuthenticateOptions, ATLASSIAN_STRATEGY, AtlassianStrategy } from './atlassian.strategy.js';
import { CallbackService, type ConnectedUser } from './callback.service.js';
import { OAuthStateStore } from './oauth-state.store.js';

/** `AuthGuard('atlassian')`, run with this application's strategy. */
@Injectable()
abstract class AtlassianAuthGuard extends AuthGuard(ATLASSIAN_STRATEGY) {
  constructor(private readonly strategy: AtlassianStrategy) {
    super();
  }

  /**
   * AuthGuard asks for the request, then looks the strategy up by name, with nothing in between (no await): the one
   * place where registering this application's strategy holds for the lookup that follows.
   */
  override getRequest(context: ExecutionContext): Request {
    this.strategy.register();
    return context.switchToHttp().getRequest<Request>();
  }
}

/**
 * `AuthGuard('atlassian')` on `GET /auth/atlassian/start`: the strategy stores a state and answers with the redirect
 * to Atlassian, so the route's handler is never reached; a refusal is thrown to the result pages.
 */
@Injectable()
export class AtlassianStartGuard extends AtlassianAuthGuard {
  override getAuthenticateOptions(): AtlassianAuthenticateOptions {
    return { step: 'authorize' };
  }
}

/**
 * `AuthGuard('atlassian')` on `GET /auth/atlassian/callback`: the strategy spends the state, exchanges the code and
 * connects the user (`request.user`). Every end of a callback that spent its state is recorded, success or failure.
 */
@Injectable()
export class AtlassianCallbackGuard extends AtlassianAuthGuard {
  constructor(
    strategy: AtlassianStrategy,
    private readonly states: OAuthStateStore,
    private readonly callbacks: CallbackService,
  ) {
    super(strategy);
  }

  override getAuthenticateOptions(): AtlassianAuthenticateOptions {
    return { step: 'callback' };
  }

  override handleRequest<TUser = ConnectedUser>(
    error: unknown,
    user: ConnectedUser | false,
    _info: unknown,
    context: ExecutionContext,
  ): TUser {
    const request = context.switchToHttp().getRequest<Request>();
    const state = this.states.spentBy(request);
    // Refused before its state was spent (malformed, unknown, used, expired, another browser): nothing to record.
    if (!state) throw error;
    const code = typeof request.query.code === 'string' ? request.query.code : undefined;
    // passport's callback resolves the guard with what this answers, so a promise is waited for.
    return this.callbacks.finish(state, code, user ? { user } : { error }) as TUser;
  }
}
