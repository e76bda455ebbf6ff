import { Inject, Injectable } from '@nestjs/common';
import { Clock } from '../common/clock.js';
import { DomainError } from '../common/errors.js';
import type { AccessTokenResponseDto } from '../refresh/access-token.dto.js';
import { AccessTokenService } from '../refresh/access-token.service.js';
import {
  AtlassianClient,
  type AtlassianProduct,
  type ProductAnswer,
  type ProductRequest,
  type ProductStreamRequest,
  type StreamedAnswer,
} from '../atlassian/atlassian.client.js';
import { AtlassianError } from '../atlassian/atlassian.errors.js';
import type { AccessibleResource } from '../atlassian/atlassian.types.js';
import { LifecycleService } from '../lifecycle/lifecycle.service.js';

/** A token handed to a call must outlive the call; Atlassian's own timeout bounds it well below this. */
const MIN_VALIDITY_SECONDS = 30;
const DEFAULT_RETRY_AFTER_SECONDS = 5;
/** A call's first token may be the one this replica read lately; the token for a retry after a 401 is read afresh. */
const CACHED = { cached: true } as const;

/**
 * Calls Atlassian on behalf of one user. The token comes from AccessTokenService, so it is refreshed first when
 * needed, under the refresh rules (one refresh per connection at a time, rotation never lost).
 *
 * A 401 is answered by one retry with a token refreshed now: Atlassian revokes an old access token when the reuse
 * leeway after its rotation ends, so a token can die before its `exp`. A 429 or an outage is not waited out here:
 * the caller gets 503 with Atlassian's Retry-After at once, because holding requests open while Atlassian sheds load
 * only piles more of them up; the caller's own retry after that delay is the backoff. A call the rate-limit governor
 * holds back (its scope is paused after an earlier 429) is 429 `atlassian_rate_limited` with the time left.
 */
@Injectable()
export class AtlassianApi {
  constructor(
    private readonly tokens: AccessTokenService,
    private readonly client: AtlassianClient,
    private readonly clock: Clock,
    @Inject(LifecycleService) private readonly lifecycle: LifecycleService,
  ) {}

  /** The user's sites, merged by id. */
  accessibleResources(userId: string): Promise<AccessibleResource[]> {
    return this.withToken(userId, (token) => this.client.accessibleResources(token), {});
  }

  /** GET a product REST path on one of the user's sites, e.g. ('jira', cloudId, '/rest/api/3/myself'); Atlassian's JSON as it came. */
  productGet(userId: string, product: AtlassianProduct, cloudId: string, path: string): Promise<unknown> {
    return this.withToken(userId, (token) => this.client.productGet(token, product, cloudId, path), { cloudId });
  }

  /**
   * A JSON product call whose answer the caller reads itself (Jira webhook registration, listing, extension): Atlassian's
   * status and JSON whatever the status, a 401 retried once with a fresh token. It throws only when no answer came: a
   * paused scope (`rate_limited` with `details.paused`), a timeout, a broken connection, or no token to send.
   */
  async productRequest(userId: string, product: AtlassianProduct, cloudId: string, request: ProductRequest): Promise<ProductAnswer> {
    const first = await this.tokens.accessToken(userId, MIN_VALIDITY_SECONDS, CACHED);
    const answer = await this.client.productRequest(first.accessToken, product, cloudId, request);
    if (answer.status !== 401) return answer;
    return this.client.productRequest((await this.freshToken(userId, first)).accessToken, product, cloudId, request);
  }

  /**
   * A product call whose answer is passed on as it comes (the proxy): Atlassian's status, headers and body as a
   * stream, whatever the status, except that a 401 is retried once with a fresh token. Only what kept an answer from
   * coming is an error: 429 `atlassian_rate_limited` (a paused scope), 504 `atlassian_timeout`, 503 when unreachable.
   *
   * The request may still be in the making (the proxy checks the site meanwhile): the token is read alongside, and
   * nothing is sent unless the request comes; when it fails, that failure is the answer, whatever the token read did.
   */
  async productStream(
    userId: string,
    product: AtlassianProduct,
    cloudId: string,
    request: ProductStreamRequest | Promise<ProductStreamRequest>,
  ): Promise<StreamedAnswer> {
    const token = this.tokens.accessToken(userId, MIN_VALIDITY_SECONDS, CACHED);
    // Awaited below once the request is made; if the request fails instead, its failure is the one answered.
    token.catch(() => undefined);
    const made = await request;
    const send = (accessToken: string) =>
      this.client.productStream(accessToken, product, cloudId, made).catch((error: unknown) => {
        throw streamError(error);
      });
    const first = await token;
    const answer = await send(first.accessToken);
    if (answer.status !== 401) return answer;
    // Read to its end, so that the connection can carry the retry.
    answer.body.resume();
    return send((await this.freshToken(userId, first)).accessToken);
  }

  private async withToken<T>(userId: string, call: (accessToken: string) => Promise<T>, target: Target): Promise<T> {
    const first = await this.tokens.accessToken(userId, MIN_VALIDITY_SECONDS, CACHED);
    try {
      return await call(first.accessToken);
    } catch (error) {
      if (!(error instanceof AtlassianError && error.kind === 'token_rejected')) throw apiError(error, target);
    }
    const fresh = await this.freshToken(userId, first);
    try {
      return await call(fresh.accessToken);
    } catch (error) {
      throw isScopeMismatch(error) ? await this.scopeMismatch(userId) : apiError(error, target);
    }
  }

  /** Atlassian's "scope does not match", with the scopes this user's grant lacks when the connection knows them. */
  private async scopeMismatch(userId: string): Promise<DomainError> {
    const missing = (await this.lifecycle.missingScopes(userId)) ?? [];
    return new DomainError(
      'atlassian_forbidden',
      missing.length > 0
        ? `Atlassian refused this call because the user's grant lacks scopes that ATLASSIAN_SCOPES asks for: ${missing.join(' ')}. ` +
            'The user must reconnect (a new connect link asks for every scope) to grant them.'
        : 'Atlassian refused this call because its scopes do not match: the call needs a scope that ATLASSIAN_SCOPES does not ' +
            "ask for. Add it to ATLASSIAN_SCOPES and to the app's permissions in the developer console, then have the user reconnect.",
    );
  }

  /**
   * A token to retry with after Atlassian refused `refused`. Asking for more validity than the refused token has left
   * makes AccessTokenService refresh it, unless a newer token was stored meanwhile (another request already
   * refreshed): then that one is used as it is.
   */
  private async freshToken(userId: string, refused: AccessTokenResponseDto): Promise<AccessTokenResponseDto> {
    const fresh = await this.tokens.accessToken(userId, this.secondsUntil(refused.expiresAt) + 1);
    if (fresh.accessToken === refused.accessToken) {
      throw new DomainError(
        'atlassian_unavailable',
        'Atlassian refused the access token and could not issue a new one right now; try again shortly.',
        { 'Retry-After': String(DEFAULT_RETRY_AFTER_SECONDS) },
      );
    }
    return fresh;
  }

  private secondsUntil(iso: string): number {
    return Math.max(0, Math.ceil((new Date(iso).getTime() - this.clock.now().getTime()) / 1000));
  }
}

/** Atlassian's 401 for a token without the call's scope: `{"code":401,"message":"Unauthorized; scope does not match"}`. */
function isScopeMismatch(error: unknown): boolean {
  return error instanceof AtlassianError && error.kind === 'token_rejected' && /scope does not match/i.test(error.message);
}

interface Target {
  readonly cloudId?: string;
}

/** Atlassian's answer as the API's error: transient ones with a Retry-After, the rest saying what the caller can do. */
function apiError(error: unknown, target: Target): unknown {
  if (!(error instanceof AtlassianError)) return error;
  switch (error.kind) {
    case 'rate_limited':
      if (error.details.paused) return pausedError(error);
      return new DomainError(
        'atlassian_unavailable',
        'Atlassian is rate limiting this app; retry after the delay in Retry-After.',
        retryAfter(error),
      );
    case 'unavailable':
    case 'timeout':
    case 'network':
      return new DomainError(
        'atlassian_unavailable',
        `Atlassian is failing right now (${error.kind}); retry after the delay in Retry-After.`,
        retryAfter(error),
      );
    case 'token_rejected':
    case 'forbidden':
      return new DomainError(
        'atlassian_forbidden',
        "Atlassian refused this call for this user: the app's scopes or the user's access to the product do not cover it.",
      );
    case 'not_found':
      if (target.cloudId !== undefined) {
        return new DomainError(
          'site_not_found',
          `Atlassian does not know site ${target.cloudId} for this user (any more); GET accessible-resources?refresh=true re-reads the user's sites.`,
        );
      }
      return new DomainError('atlassian_error', 'Atlassian answered 404 for a call that should always exist.');
    default:
      return new DomainError('atlassian_error', `Atlassian answered something unexpected (${error.details.status ?? error.kind}).`);
  }
}

function retryAfter(error: AtlassianError): Record<string, string> {
  const ms = error.details.retryAfterMs;
  const seconds = ms === undefined ? DEFAULT_RETRY_AFTER_SECONDS : Math.max(1, Math.ceil(ms / 1000));
  return { 'Retry-After': String(seconds) };
}

/** A call the rate-limit governor held back: 429 with the whole seconds left and Atlassian's reason, as SPEC says. */
function pausedError(error: AtlassianError): DomainError {
  const reason = error.details.reason;
  return new DomainError(
    'atlassian_rate_limited',
    `Atlassian rate limited this app${reason ? ` (${reason})` : ''}; calls like this one are held back until the delay in Retry-After has passed, on every replica.`,
    {
      'Retry-After': String(Math.max(1, Math.ceil((error.details.retryAfterMs ?? 0) / 1000))),
      ...(reason ? { 'RateLimit-Reason': reason } : {}),
    },
  );
}

/** Why a streamed call has no answer to pass on. */
function streamError(error: unknown): unknown {
  if (!(error instanceof AtlassianError)) return error;
  if (error.details.paused) return pausedError(error);
  switch (error.kind) {
    case 'timeout':
      return new DomainError('atlassian_timeout', `Atlassian did not answer in time: ${error.message}.`);
    case 'network':
      return new DomainError(
        'atlassian_unavailable',
        `Atlassian could not be reached (${error.message}); retry after the delay in Retry-After.`,
        {
          'Retry-After': String(DEFAULT_RETRY_AFTER_SECONDS),
        },
      );
    default:
      return error;
  }
}
