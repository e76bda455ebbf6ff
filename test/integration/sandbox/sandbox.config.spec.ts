import {
  assertSandboxAllowed,
  SANDBOX_CLIENT_ID,
  SANDBOX_CLIENT_SECRET,
  SANDBOX_DEFAULT_REDIRECT_URI,
  standaloneConfigFromEnv,
} from '../../../src/sandbox/sandbox.config.js';
import { escapeHtml } from '../../../src/sandbox/sandbox.pages.js';

describe('sandbox configuration', () => {
  it('refuses to run in production', () => {
    expect(() => assertSandboxAllowed({ NODE_ENV: 'production' })).toThrow(/refuses to run with NODE_ENV=production/);
    expect(() => assertSandboxAllowed({ NODE_ENV: 'prod' })).toThrow(/refuses to run with NODE_ENV=prod /);
    expect(() => assertSandboxAllowed({ NODE_ENV: 'test' })).not.toThrow();
    expect(() => assertSandboxAllowed({ NODE_ENV: 'development' })).not.toThrow();
    expect(() => assertSandboxAllowed({})).not.toThrow();
  });

  it('falls back to the documented defaults', () => {
    expect(standaloneConfigFromEnv({})).toEqual({
      ok: true,
      config: {
        port: 4010,
        options: {
          clientId: SANDBOX_CLIENT_ID,
          clientSecret: SANDBOX_CLIENT_SECRET,
          redirectUris: [SANDBOX_DEFAULT_REDIRECT_URI],
          accessTokenTtlSeconds: undefined,
          reuseLeewaySeconds: undefined,
        },
      },
    });
  });

  it('reads every variable', () => {
    const result = standaloneConfigFromEnv({
      SANDBOX_PORT: '4999',
      SANDBOX_CLIENT_ID: 'id',
      SANDBOX_CLIENT_SECRET: 'secret',
      SANDBOX_REDIRECT_URIS: 'https://a.example/cb, http://localhost:3000/cb',
      SANDBOX_ACCESS_TOKEN_TTL_SECONDS: '120',
      SANDBOX_REUSE_LEEWAY_SECONDS: '0',
    });
    expect(result).toEqual({
      ok: true,
      config: {
        port: 4999,
        options: {
          clientId: 'id',
          clientSecret: 'secret',
          redirectUris: ['https://a.example/cb', 'http://localhost:3000/cb'],
          accessTokenTtlSeconds: 120,
          reuseLeewaySeconds: 0,
        },
      },
    });
  });

  it('names every bad variable at once', () => {
    const result = standaloneConfigFromEnv({
      SANDBOX_PORT: '70000',
      SANDBOX_REDIRECT_URIS: 'not-a-url',
      SANDBOX_ACCESS_TOKEN_TTL_SECONDS: '1h',
    });
    expect(result.ok).toBe(false);
    const problems = result.ok ? [] : result.problems;
    expect(problems).toHaveLength(3);
    expect(problems.join('\n')).toMatch(/SANDBOX_PORT[\s\S]*SANDBOX_REDIRECT_URIS[\s\S]*SANDBOX_ACCESS_TOKEN_TTL_SECONDS/);
  });

  it('escapes HTML', () => {
    expect(escapeHtml(`<a href="x">'&'</a>`)).toBe('&#60;a href=&#34;x&#34;&#62;&#39;&#38;&#39;&#60;/a&#62;');
  });
});
