import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { Writable } from 'node:stream';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from '@jest/globals';
import pino from 'pino';
import { HIGHLIGHT, prettyOutput, wantsPrettyLogs } from './log-output.js';
import { REDACTING_HOOKS } from './redact.js';

function prettyLogger(): { logger: pino.Logger; text: () => string } {
  const chunks: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      chunks.push(chunk.toString());
      done();
    },
  });
  const logger = pino({ hooks: REDACTING_HOOKS }, prettyOutput(sink, false));
  return { logger, text: () => chunks.join('') };
}

describe('log output', () => {
  it('is pretty only at a terminal and never in production', () => {
    expect(wantsPrettyLogs({ production: false }, { isTTY: true })).toBe(true);
    expect(wantsPrettyLogs({ production: false }, { isTTY: false })).toBe(false);
    expect(wantsPrettyLogs({ production: true }, { isTTY: true })).toBe(false);
  });

  it('pretty: redacted like the JSON lines, requests on one line, highlighted lines framed', () => {
    const { logger, text } = prettyLogger();
    logger.info({ refreshToken: 'rt-SECRET', grant: { client_secret: 'cs-SECRET' }, apiKey: 'key-SECRET' }, 'refreshed');
    logger.child({ context: 'CallbackService', state: 'state-SECRET' }).warn({ callback: { code: 'code-SECRET' } }, 'callback refused');
    logger.info(
      { req: { id: 'r1', method: 'GET', url: '/v1/users/u/connection' }, res: { statusCode: 200 }, responseTime: 7 },
      'request completed',
    );
    logger.warn({ [HIGHLIGHT]: true, context: 'Main' }, 'SANDBOX MODE: users connect to the built-in sandbox');

    const output = text();
    expect(output).not.toContain('SECRET');
    expect(output).toContain('[Redacted]');
    expect(output).toContain('[CallbackService] callback refused');
    expect(output).toMatch(/INFO: GET \/v1\/users\/u\/connection 200 \(7 ms\)\n/);
    expect(output).toMatch(/│ SANDBOX MODE: users connect to the built-in sandbox +│/);
    expect(output).not.toContain('"highlight"');
  });

  // The built module (`npm test` builds first), on a real standard output.
  it('pretty: loses no line when the process exits at once (the line that says it stopped)', () => {
    const module = pathToFileURL(resolve('dist/src/logging/log-output.js')).href;
    const script = `
      import pino from 'pino';
      import { prettyOutput } from ${JSON.stringify(module)};
      const logger = pino({}, prettyOutput(pino.destination({ dest: 1, sync: true }), false));
      logger.info('Stopped on SIGTERM in 12 ms');
      process.exit(0);`;
    const child = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
    expect(child.stdout).toMatch(/INFO: Stopped on SIGTERM in 12 ms\n$/);
  });
});
