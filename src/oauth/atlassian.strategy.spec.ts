import { randomBytes } from 'node:crypto';
import { describe, expect, it } from '@jest/globals';
import { loadConfig } from '../config/app-config.js';
import { AtlassianStrategy } from './atlassian.strategy.js';

function strategyFor(env: Record<string, string>): AtlassianStrategy {
  return new AtlassianStrategy(loadConfig({ TOKEN_ENCRYPTION_KEYS: `k:${randomBytes(32).toString('base64')}`, ...env }));
}

describe('AtlassianStrategy', () => {
  it('builds Atlassian’s authorization URL with every parameter', () => {
    const strategy = strategyFor({
      ATLASSIAN_CLIENT_ID: 'client-123',
      ATLASSIAN_CLIENT_SECRET: 'secret-456',
      ATLASSIAN_CALLBACK_URL: 'https://tokens.example.com/auth/atlassian/callback/',
      ATLASSIAN_SCOPES: 'read:jira-work read:jira-user',
    });
    const url = new URL(strategy.authorizationUrl('the-state'));
    expect(`${url.origin}${url.pathname}`).toBe('https://auth.atlassian.com/authorize');
    expect(Object.fromEntries(url.searchParams)).toEqual({
      audience: 'api.atlassian.com',
      client_id: 'client-123',
      scope: 'read:jira-work read:jira-user offline_access read:me',
      redirect_uri: 'https://tokens.example.com/auth/atlassian/callback/',
      state: 'the-state',
      response_type: 'code',
      prompt: 'consent',
    });
    expect(url.search).not.toContain('secret-456');
  });

  it('encodes the scope with %20 and the redirect_uri in full', () => {
    const strategy = strategyFor({
      ATLASSIAN_CLIENT_ID: 'c',
      ATLASSIAN_CLIENT_SECRET: 's',
      ATLASSIAN_CALLBACK_URL: 'https://x.example/cb?tenant=a&b=c',
    });
    const location = strategy.authorizationUrl('s1');
    expect(location).toContain('scope=read%3Ajira-work%20offline_access%20read%3Ame');
    expect(location).toContain(`redirect_uri=${encodeURIComponent('https://x.example/cb?tenant=a&b=c')}`);
  });

  it('points at the sandbox when no client id is set', () => {
    const strategy = strategyFor({ PUBLIC_URL: 'http://localhost:3000' });
    expect(strategy.authorizationUrl('s').startsWith('http://localhost:3000/sandbox/authorize?')).toBe(true);
  });
});
