import { describe, expect, it } from '@jest/globals';
import { MAX_CODE_LENGTH, parseCallbackParams, parseStartParams } from './browser-params.js';
import { ConnectFailure } from './connect-failure.js';

function failureOf(parse: () => unknown): ConnectFailure {
  try {
    parse();
  } catch (error) {
    if (error instanceof ConnectFailure) return error;
    throw error;
  }
  throw new Error('expected a ConnectFailure');
}

describe('parseCallbackParams', () => {
  it('reads code, state and error fields, and ignores parameters it does not know', () => {
    expect(parseCallbackParams({ code: 'c', state: 's', iss: 'https://auth.atlassian.com' })).toEqual({ code: 'c', state: 's' });
    expect(parseCallbackParams({ error: 'access_denied', error_description: 'User did not authorize the request', state: 's' })).toEqual({
      error: 'access_denied',
      errorDescription: 'User did not authorize the request',
      state: 's',
    });
    expect(parseCallbackParams({})).toEqual({});
  });

  it.each([
    ['a repeated code', { code: ['a', 'b'], state: 's' }, 'The code parameter must appear once'],
    ['a repeated state', { code: 'a', state: ['s', 't'] }, 'The state parameter must appear once'],
    ['a bracketed parameter', { code: { x: 'y' }, state: 's' }, 'The code parameter must appear once'],
    ['a code over the limit', { code: 'x'.repeat(MAX_CODE_LENGTH + 1), state: 's' }, `at most ${MAX_CODE_LENGTH} are accepted`],
    ['an oversized state', { code: 'c', state: 's'.repeat(257) }, 'The state parameter is 257 characters long'],
  ])('refuses %s', (_name, query, message) => {
    const failure = failureOf(() => parseCallbackParams(query));
    expect(failure.code).toBe('invalid_request');
    expect(failure.detail).toContain(message);
  });

  it('accepts a code at the limit', () => {
    expect(parseCallbackParams({ code: 'x'.repeat(MAX_CODE_LENGTH) }).code).toHaveLength(MAX_CODE_LENGTH);
  });
});

describe('parseStartParams', () => {
  it('needs one ticket', () => {
    expect(parseStartParams({ ticket: 't', utm_source: 'mail' })).toEqual({ ticket: 't' });
    expect(failureOf(() => parseStartParams({})).code).toBe('ticket_invalid');
    expect(failureOf(() => parseStartParams({ ticket: '' })).code).toBe('ticket_invalid');
    expect(failureOf(() => parseStartParams({ ticket: ['a', 'b'] })).code).toBe('invalid_request');
  });
});
