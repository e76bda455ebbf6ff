import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { readEnvironment } from './env-file.js';

describe('readEnvironment', () => {
  let directory: string;
  beforeEach(() => {
    directory = mkdtempSync(join(tmpdir(), 'ats-env-'));
  });
  afterEach(() => rmSync(directory, { recursive: true, force: true }));

  it('answers the environment as it is when there is no .env', () => {
    const env = { PORT: '3300' };
    expect(readEnvironment(env, directory)).toBe(env);
  });

  it('reads .env under the environment: a variable set in the environment wins, even empty', () => {
    writeFileSync(
      join(directory, '.env'),
      ['# comment', 'PORT=3300', 'LOG_LEVEL=debug', 'PUBLIC_URL="http://localhost:3300"', 'WEBHOOK_URL=https://hooks.example.com/x'].join(
        '\n',
      ),
    );
    const env = readEnvironment({ LOG_LEVEL: 'warn', WEBHOOK_URL: '' }, directory);
    expect(env).toEqual({ PORT: '3300', LOG_LEVEL: 'warn', PUBLIC_URL: 'http://localhost:3300', WEBHOOK_URL: '' });
  });
});
