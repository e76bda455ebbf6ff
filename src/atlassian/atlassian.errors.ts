/**
 * What went wrong talking to Atlassian, reduced to what the caller must do about it.
 * - `invalid_grant`, `unauthorized_client`: the grant or code is dead; never retry (re-consent for refresh tokens).
 * - `invalid_request`: the request was refused as malformed (on code exchange: usually a code that is too old).
 * - `client_unauthorized`: 401 from the token endpoint, the client id/secret is wrong: a configuration error.
 * - `token_rejected`: an API call's access token was refused (401): expired, revoked, or missing scopes.
 * - `rate_limited`, `unavailable`, `timeout`, `network`, `bad_response`: transient, retry with backoff.
 * - `not_found`, `forbidden`: the API answered 404/403 for this resource.
 */
export type AtlassianErrorKind =
  | 'invalid_grant'
  | 'unauthorized_client'
  | 'invalid_request'
  | 'client_unauthorized'
  | 'token_rejected'
  | 'rate_limited'
  | 'unavailable'
  | 'timeout'
  | 'network'
  | 'bad_response'
  | 'not_found'
  | 'forbidden';

const TRANSIENT: ReadonlySet<AtlassianErrorKind> = new Set(['rate_limited', 'unavailable', 'timeout', 'network', 'bad_response']);

export class AtlassianError extends Error {
  constructor(
    readonly kind: AtlassianErrorKind,
    message: string,
    readonly details: {
      readonly status?: number;
      /** Atlassian's `error` and `error_description`: fixed strings, never a token. */
      readonly error?: string;
      readonly description?: string;
      readonly retryAfterMs?: number;
      /** A 429's `RateLimit-Reason` (which of Atlassian's limits), when it named one. */
      readonly reason?: string;
      /** The call never went out: the rate-limit governor holds its scope paused after an earlier 429. */
      readonly paused?: boolean;
    } = {},
  ) {
    super(message);
    this.name = 'AtlassianError';
  }

  /** Worth trying again later: nothing says the grant or the configuration is wrong. */
  get transient(): boolean {
    return TRANSIENT.has(this.kind);
  }

  /** The refresh token's grant is gone; only the user's consent brings it back. */
  get grantRevoked(): boolean {
    return this.kind === 'invalid_grant' || this.kind === 'unauthorized_client';
  }
}
