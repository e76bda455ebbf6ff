import { describe, expect, it } from '@jest/globals';
import { missingScopes } from './scopes.js';

describe('missingScopes', () => {
  const configured = ['read:jira-work', 'write:jira-work', 'offline_access', 'read:me'];

  it('is empty when the grant lists every configured scope, whatever else it lists and in any order', () => {
    expect(missingScopes(configured, ['read:me', 'offline_access', 'write:jira-work', 'read:jira-work', 'read:jira-user'])).toEqual([]);
  });

  it('lists the configured scopes the grant lacks, sorted, including the two always asked for', () => {
    expect(missingScopes(configured, ['read:jira-work'])).toEqual(['offline_access', 'read:me', 'write:jira-work']);
  });

  it('compares scopes exactly', () => {
    expect(missingScopes(['read:jira-work'], ['READ:JIRA-WORK', 'read:jira-work:*'])).toEqual(['read:jira-work']);
  });
});
