import { describe, expect, it } from '@jest/globals';
import type { GatedCall } from '../atlassian/atlassian-call.gate.js';
import { issueOf, scopeOfLimit, scopesOf } from './pause-scopes.js';

const jira = (method: string, path: string, cloudId = 'c1'): GatedCall => ({ product: 'jira', cloudId, method, path });

describe('scopeOfLimit: what a 429 pauses', () => {
  it.each([
    ['a global quota', jira('GET', '/rest/api/3/myself'), 'jira-quota-global-based', 'jira'],
    ['a global quota met by a write to an issue', jira('PUT', '/rest/api/3/issue/ABC-1'), 'jira-quota-global-based', 'jira'],
    ['a tenant quota', jira('GET', '/rest/api/3/search/jql'), 'jira-quota-tenant-based', 'jira/c1'],
    ['a burst', jira('GET', '/rest/api/3/issue/ABC-1'), 'jira-burst-based', 'jira/c1'],
    ['no reason', jira('GET', '/rest/api/3/myself'), undefined, 'jira/c1'],
    ['a reason not known here', jira('GET', '/rest/api/3/myself'), 'jira-something-new', 'jira/c1'],
    ['a per-issue write limit', jira('PUT', '/rest/api/3/issue/abc-1'), 'jira-per-issue-on-write', 'jira/c1/issue/ABC-1'],
    [
      'a per-issue limit on an issue id, API v2',
      jira('POST', '/rest/api/2/issue/10042/comment'),
      'jira-per-issue-on-write',
      'jira/c1/issue/10042',
    ],
    ['a per-issue limit on a path without an issue', jira('POST', '/rest/api/3/issue/bulk'), 'jira-per-issue-on-write', 'jira/c1'],
    ['a per-issue limit on an encoded key', jira('PUT', '/rest/api/3/issue/AB%2DC-1'), 'jira-per-issue-on-write', 'jira/c1'],
    ['a Confluence 429', { product: 'confluence', cloudId: 'c1', method: 'GET', path: '/wiki/api/v2/pages/1' }, undefined, 'confluence/c1'],
  ] as const)('%s pauses %s', (_, call, reason, key) => {
    expect(scopeOfLimit(call, reason)?.key).toBe(key);
  });

  it('pauses nothing after a 429 of a platform call: no product limit meters them', () => {
    expect(
      scopeOfLimit({ product: 'platform', method: 'GET', path: '/oauth/token/accessible-resources' }, 'jira-burst-based'),
    ).toBeUndefined();
  });
});

describe('scopesOf: the pauses that hold a call back', () => {
  it.each([
    ['a read', jira('GET', '/rest/api/3/issue/ABC-1'), ['jira', 'jira/c1']],
    ['a write to an issue', jira('PUT', '/rest/api/3/issue/ABC-1'), ['jira', 'jira/c1', 'jira/c1/issue/ABC-1']],
    ['a write below an issue', jira('post', '/rest/api/3/issue/abc-1/comment'), ['jira', 'jira/c1', 'jira/c1/issue/ABC-1']],
    ['a delete of an issue', jira('DELETE', '/rest/api/2/issue/10042'), ['jira', 'jira/c1', 'jira/c1/issue/10042']],
    ['a write elsewhere', jira('POST', '/rest/api/3/search/jql'), ['jira', 'jira/c1']],
    ['a platform call', { product: 'platform', method: 'GET', path: '/me' }, []],
  ] as const)('%s', (_, call, keys) => {
    expect(scopesOf(call).map((scope) => scope.key)).toEqual(keys);
  });

  it('holds back exactly the calls in the scope a 429 paused', () => {
    const paused = scopeOfLimit(jira('PUT', '/rest/api/3/issue/ABC-1'), 'jira-per-issue-on-write')!.key;
    const held = (call: GatedCall) => scopesOf(call).some((scope) => scope.key === paused);
    expect(held(jira('PUT', '/rest/api/3/issue/ABC-1/transitions'))).toBe(true);
    expect(held(jira('GET', '/rest/api/3/issue/ABC-1'))).toBe(false);
    expect(held(jira('PUT', '/rest/api/3/issue/ABC-2'))).toBe(false);
    expect(held(jira('PUT', '/rest/api/3/issue/ABC-1', 'c2'))).toBe(false);
  });
});

describe('issueOf', () => {
  it.each([
    ['/rest/api/3/issue/ABC-123', 'ABC-123'],
    ['/rest/api/3/issue/abc_d-7/', 'ABC_D-7'],
    ['/rest/api/2/issue/10000/worklog/1', '10000'],
    ['/rest/api/3/issue/picker', undefined],
    ['/rest/api/3/issue', undefined],
    ['/rest/api/3/issuetype/10000', undefined],
    ['/rest/api/1/issue/ABC-1', undefined],
    ['/rest/agile/1.0/issue/ABC-1', undefined],
    ['/rest/api/3/issue/%E0%A4%A', undefined],
  ])('%s: %s', (path, issue) => {
    expect(issueOf(path)).toBe(issue);
  });
});
