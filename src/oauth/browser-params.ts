import { ConnectFailure } from './connect-failure.js';

/** Atlassian's codes are opaque and of any length, but far below this; a longer one is refused, not stored or sent on. */
export const MAX_CODE_LENGTH = 4096;
const MAX_SECRET_LENGTH = 256;
const MAX_ERROR_LENGTH = 128;
const MAX_ERROR_DESCRIPTION_LENGTH = 1024;

export interface StartParams {
  readonly ticket: string;
}

/** What Atlassian sends back: `code` and `state`, or `error` (with `error_description`) and `state`. */
export interface CallbackParams {
  readonly code?: string;
  readonly state?: string;
  readonly error?: string;
  readonly errorDescription?: string;
}

export function parseStartParams(query: unknown): StartParams {
  const ticket = single(query, 'ticket', MAX_SECRET_LENGTH);
  if (!ticket) throw new ConnectFailure('ticket_invalid', 'The address has no ticket parameter.');
  return { ticket };
}

/**
 * Each parameter at most once, as a string, within its size limit (OAuth parameters appear at most once; Express
 * turns a repeated one into an array). Other parameters are ignored: Atlassian may add some.
 */
export function parseCallbackParams(query: unknown): CallbackParams {
  return {
    code: single(query, 'code', MAX_CODE_LENGTH),
    state: single(query, 'state', MAX_SECRET_LENGTH),
    error: single(query, 'error', MAX_ERROR_LENGTH),
    errorDescription: single(query, 'error_description', MAX_ERROR_DESCRIPTION_LENGTH),
  };
}

function single(query: unknown, name: string, maxLength: number): string | undefined {
  const value = typeof query === 'object' && query !== null ? (query as Record<string, unknown>)[name] : undefined;
  if (value === undefined) return undefined;
  if (typeof value !== 'string') {
    throw new ConnectFailure(
      'invalid_request',
      `The ${name} parameter must appear once, as plain text; it appeared several times or with brackets.`,
    );
  }
  if (value.length > maxLength) {
    throw new ConnectFailure(
      'invalid_request',
      `The ${name} parameter is ${value.length} characters long; at most ${maxLength} are accepted.`,
    );
  }
  return value;
}
