import { HttpStatus } from '@nestjs/common';

/**
 * Every error code the API answers with, and its HTTP status. The codes are part of the contract
 * (clients switch on them); the README lists them. Add new ones here only.
 */
export const ERROR_CODES = {
  unauthorized: HttpStatus.UNAUTHORIZED,
  invalid_request: HttpStatus.BAD_REQUEST,
  invalid_product: HttpStatus.BAD_REQUEST,
  invalid_path: HttpStatus.BAD_REQUEST,
  invalid_subscription: HttpStatus.BAD_REQUEST,
  body_too_large: HttpStatus.PAYLOAD_TOO_LARGE,
  not_found: HttpStatus.NOT_FOUND,
  connection_not_found: HttpStatus.NOT_FOUND,
  site_not_found: HttpStatus.NOT_FOUND,
  reauth_required: HttpStatus.CONFLICT,
  missing_scopes: HttpStatus.CONFLICT,
  rate_limited: HttpStatus.TOO_MANY_REQUESTS,
  atlassian_rate_limited: HttpStatus.TOO_MANY_REQUESTS,
  atlassian_unavailable: HttpStatus.SERVICE_UNAVAILABLE,
  atlassian_error: HttpStatus.BAD_GATEWAY,
  atlassian_timeout: HttpStatus.GATEWAY_TIMEOUT,
  atlassian_forbidden: HttpStatus.FORBIDDEN,
  configuration_error: HttpStatus.SERVICE_UNAVAILABLE,
  token_decryption_failed: HttpStatus.SERVICE_UNAVAILABLE,
  database_unavailable: HttpStatus.SERVICE_UNAVAILABLE,
  internal_error: HttpStatus.INTERNAL_SERVER_ERROR,
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

/** An error meant for the API's caller: its code and message are answered as they are. */
export class DomainError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    /** Extra response headers, e.g. Retry-After. */
    readonly headers: Readonly<Record<string, string>> = {},
  ) {
    super(message);
    this.name = 'DomainError';
  }

  get status(): number {
    return ERROR_CODES[this.code];
  }
}

export class ConnectionNotFoundError extends DomainError {
  constructor(userId: string) {
    super('connection_not_found', `No Atlassian connection for user "${userId}".`);
  }
}

export class ReauthRequiredError extends DomainError {
  constructor(userId: string) {
    super(
      'reauth_required',
      `The Atlassian connection of user "${userId}" needs the user's consent again: send them through POST /v1/users/{userId}/connect.`,
    );
  }
}
