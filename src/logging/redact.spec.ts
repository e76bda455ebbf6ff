import { Writable } from 'node:stream';
import { describe, expect, it } from '@jest/globals';
import pino from 'pino';
import { maskUrl, REDACTING_HOOKS, redactLine } from './redact.js';

/** A pino logger with the service's hooks, writing its lines into an array. */
function capturingLogger(): { logger: pino.Logger; lines: () => Record<string, unknown>[] } {
  const chunks: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, done) {
      chunks.push(chunk.toString());
      done();
    },
  });
  const logger = pino({ hooks: REDACTING_HOOKS, serializers: { err: pino.stdSerializers.err } }, destination);
  return {
    logger,
    lines: () =>
      chunks
        .join('')
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line) as Record<string, unknown>),
  };
}

describe('redactLine', () => {
  it('replaces the value of every secret field, at any depth and in any case, whatever the value', () => {
    const line = JSON.stringify({
      apiKey: 'key-SECRET',
      grant: { accessToken: 'at-SECRET', refresh_token: 'rt-SECRET', expiresIn: 3600 },
      request: { url: '/token', headers: { Authorization: 'Bearer key-SECRET', 'Set-Cookie': ['a-SECRET', 'b-SECRET'], accept: 'json' } },
      err: { code: 429, state: { nested: 'state-SECRET', list: [{ x: '}' }] }, after: 'kept' },
      userId: 'user-1',
    });
    expect(JSON.parse(redactLine(`${line}\n`))).toEqual({
      apiKey: '[Redacted]',
      grant: { accessToken: '[Redacted]', refresh_token: '[Redacted]', expiresIn: 3600 },
      request: { url: '/token', headers: { Authorization: '[Redacted]', 'Set-Cookie': '[Redacted]', accept: 'json' } },
      err: { code: '[Redacted]', state: '[Redacted]', after: 'kept' },
      userId: 'user-1',
    });
  });

  it('leaves text that only looks like a secret field inside a string, and a line without secrets, as they are', () => {
    const line = JSON.stringify({ msg: 'sent {"code":"x"} and "state": too', codeVerifier: 'v', statement: 's' });
    expect(redactLine(line)).toBe(line);
  });

  it("is applied by pino to every line, child loggers' bindings included", () => {
    const { logger, lines } = capturingLogger();
    logger.info({ refreshToken: 'rt-SECRET', grant: { client_secret: 'cs-SECRET' } }, 'refreshed');
    logger.child({ state: 'state-SECRET', callback: { code: 'code-SECRET', ticket: 'ticket-SECRET' } }).warn('callback refused');
    logger.error({ err: Object.assign(new Error('boom'), { code: 'code-SECRET' }) }, 'failed');

    expect(JSON.stringify(lines())).not.toContain('SECRET');
    expect(lines()[0]).toMatchObject({ refreshToken: '[Redacted]', grant: { client_secret: '[Redacted]' }, msg: 'refreshed' });
    expect(lines()[1]).toMatchObject({ state: '[Redacted]', callback: { code: '[Redacted]', ticket: '[Redacted]' } });
    expect(lines()[2]).toMatchObject({ err: { type: 'Error', message: 'boom', code: '[Redacted]' }, msg: 'failed' });
  });
});

describe('maskUrl', () => {
  it('censors the values of secret query parameters and keeps the rest', () => {
    expect(maskUrl('/auth/atlassian/callback?code=c-SECRET&state=s-SECRET&keep=1')).toBe(
      '/auth/atlassian/callback?code=[Redacted]&state=[Redacted]&keep=1',
    );
    expect(maskUrl('/v1/users/u/accessible-resources')).toBe('/v1/users/u/accessible-resources');
  });
});
