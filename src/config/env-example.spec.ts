import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { ConfigValidationError, loadConfig } from './app-config.js';
import { readEnvironment } from './env-file.js';

/** .env.example is what a developer copies to .env: it must start the service as it is, and name what production needs. */
describe('.env.example copied to .env', () => {
  let directory: string;
  beforeEach(() => {
    directory = mkdtempSync(join(tmpdir(), 'ats-env-example-'));
    copyFileSync(resolve('.env.example'), join(directory, '.env'));
  });
  afterEach(() => rmSync(directory, { recursive: true, force: true }));

  it('starts a local run as it is: development, the sandbox, the embedded database', () => {
    const config = loadConfig(readEnvironment({}, directory), { dataDir: join(directory, 'data') });
    expect(config).toMatchObject({ nodeEnv: 'development', port: 3000, publicUrl: 'http://localhost:3000', apiKeysDefaulted: true });
    expect(config.atlassian.sandbox).toBe(true);
    expect(config.database.url).toBeUndefined();
  });

  it('marks every line production refuses to start without', () => {
    let problems: readonly string[] = [];
    try {
      loadConfig(readEnvironment({ NODE_ENV: 'production' }, directory), { dataDir: join(directory, 'data') });
    } catch (error) {
      problems = (error as ConfigValidationError).problems;
    }
    const required = problems.map((problem) => problem.split(' ')[0]).sort();
    expect(required).toEqual(['API_KEYS', 'ATLASSIAN_CLIENT_ID', 'TOKEN_ENCRYPTION_KEYS']);
    // Each variable with the comment lines just above it.
    const marked: string[] = [];
    let comment = '';
    for (const line of readFileSync(resolve('.env.example'), 'utf8').split('\n')) {
      const variable = /^([A-Z_]+)=/.exec(line)?.[1];
      if (variable && /\[production\] required/.test(comment)) marked.push(variable);
      comment = line.startsWith('#') ? `${comment}\n${line}` : '';
    }
    expect(marked).toEqual(expect.arrayContaining(required));
  });
});
