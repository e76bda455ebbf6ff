import { describe, expect, it } from '@jest/globals';
import { isProxyPath, pathProblem, proxyTarget, routeProductPathsAsSent } from './proxy-path.js';

const SITE = 'https://api.atlassian.com/ex/jira/11111111-1111-4111-a111-111111111111/';

describe('pathProblem: hostile product paths', () => {
  it.each([
    ['a .. segment', '/rest/api/3/../../../oauth/token/accessible-resources', 'it has a . or .. segment'],
    ['a . segment', '/rest/./api/3/myself', 'it has a . or .. segment'],
    ['a trailing ..', '/rest/api/3/myself/..', 'it has a . or .. segment'],
    ['.. encoded', '/rest/%2e%2e/%2E%2E/ex/jira/other-site/rest/api/3/myself', 'it has a . or .. segment'],
    ['.. half encoded', '/rest/.%2e/x', 'it has a . or .. segment'],
    ['.. encoded twice', '/rest/%252e%252e/x', 'it has a . or .. segment'],
    ['.. encoded three times', '/rest/%25252e%25252E/x', 'it has a . or .. segment'],
    ['.. encoded four times', '/rest/%2525252e%2525252e/x', 'it is encoded more times over than any client does'],
    ['.. with a matrix parameter', '/rest/..;jsessionid=1/x', 'it has a . or .. segment'],
    ['.. encoded with a matrix parameter', '/rest/%2e%2e%3bx/x', 'it has a . or .. segment'],
    ['an encoded slash', '/rest/api%2F3/myself', 'it has an encoded / or \\'],
    ['an encoded slash and dots', '/rest/%2e%2e%2f%2e%2e%2fother/x', 'it has an encoded / or \\'],
    ['a slash encoded twice', '/rest/api%252F3/myself', 'it has an encoded / or \\'],
    ['a backslash', '/rest\\..\\..\\x', 'it has characters that must be percent-encoded'],
    ['an encoded backslash', '/rest/%5c..%5cx', 'it has an encoded / or \\'],
    ['an absolute URL', '/https://evil.example/x', 'it starts like an absolute URL'],
    ['an encoded absolute URL', '/https%3A%2F%2Fevil.example%2Fx', 'it has an encoded / or \\'],
    ['an encoded scheme', '/javascript%3Aalert(1)', 'it starts like an absolute URL'],
    ['a protocol-relative URL', '//evil.example/rest/api/3/myself', 'it has an empty segment (//)'],
    ['an empty segment', '/rest//api/3/myself', 'it has an empty segment (//)'],
    ['an @ trick', '/@evil.example/rest', 'it has an @'],
    ['an encoded @', '/rest/api/3/user%40evil.example', 'it has an @'],
    ['an encoded NUL', '/rest/api/3/myself%00.json', 'it has control characters'],
    ['an encoded line break', '/rest/api/3/myself%0d%0aHost:%20evil', 'it has control characters'],
    ['a raw space', '/rest/api/3/my self', 'it has characters that must be percent-encoded'],
    ['a raw ?', '/rest/api/3/myself?x', 'it has characters that must be percent-encoded'],
    ['a raw #', '/rest/api/3/myself#x', 'it has characters that must be percent-encoded'],
    ['raw non-ASCII', '/rest/api/3/issue/ÄBC-1', 'it has characters that must be percent-encoded'],
    ['malformed percent-encoding', '/rest/api/3/%zz', 'it has characters that must be percent-encoded'],
    ['overlong UTF-8 for a dot', '/rest/%c0%ae%c0%ae/x', 'it has malformed percent-encoding'],
    ['nothing', '/', 'it is empty'],
    ['no leading slash', 'rest/api/3/myself', 'it is empty'],
  ])('refuses %s: %s', (_, path, problem) => {
    expect(pathProblem(path)).toBe(problem);
  });

  it.each([
    '/rest/api/3/myself',
    '/rest/api/3/myself/',
    '/rest/api/3/issue/ABC-123/comment',
    '/rest/api/3/issue/ABC-1/properties/com.example:flag',
    '/rest/api/3/attachment/content/10000',
    '/rest/api/3/search/jql',
    '/rest/api/3/filter/...',
    '/rest/api/3/project/A.B',
    '/rest/agile/1.0/board/1/sprint',
    '/wiki/api/v2/pages/42',
    '/wiki/rest/api/content/42/child/attachment',
    '/rest/api/3/issue/ABC-1/properties/%25literal',
    '/rest/api/3/user/properties/caf%C3%A9',
  ])('lets %s through, and a URL parser leaves it under the site', (path) => {
    expect(pathProblem(path)).toBeUndefined();
    const target = `${SITE}${path.slice(1)}`;
    expect(new URL(target).href).toBe(target);
  });

  it('leaves no path it lets through outside the site once a URL parser has read it', () => {
    const pieces = ['.', '..', '%2e', '%2E', '%2e%2e', '.%2e', '%252e', ';', '%3b', 'a', '%5c', '%2f', '\\', '/', ':', '@', '%40', '%25'];
    for (const a of pieces) {
      for (const b of pieces) {
        for (const c of pieces) {
          const path = `/${a}${b}/${c}`;
          if (pathProblem(path) !== undefined) continue;
          const target = `${SITE}${path.slice(1)}`;
          expect([path, new URL(target).href.startsWith(SITE)]).toEqual([path, true]);
          expect([path, new URL(target).pathname]).toEqual([path, `${new URL(SITE).pathname}${path.slice(1)}`]);
        }
      }
    }
  });
});

describe('proxyTarget', () => {
  it.each([
    ['/v1/users/u-1/proxy/jira/c1/rest/api/3/myself', '/rest/api/3/myself', ''],
    [
      '/v1/users/u-1/proxy/jira/c1/rest/api/3/search/jql?jql=project%20%3D%20A&fields=a&fields=b',
      '/rest/api/3/search/jql',
      'jql=project%20%3D%20A&fields=a&fields=b',
    ],
    ['/v1/users/u%2F1/proxy/jira/c1/rest/%2e%2e/x?', '/rest/%2e%2e/x', ''],
    ['/v1/users/u/proxy/jira/c1/a?b?c', '/a', 'b?c'],
  ])('%s: path %s, query %s', (url, path, query) => {
    expect(proxyTarget(url)).toEqual({ path, query });
  });

  it('knows the proxy routes', () => {
    expect(isProxyPath('/v1/users/u-1/proxy/jira/c1/rest/api/3/myself')).toBe(true);
    expect(isProxyPath('/v1/users/u-1/proxy')).toBe(true);
    expect(isProxyPath('/v1/users/u-1/proxyish')).toBe(false);
    expect(isProxyPath('/v1/users/u-1/access-token')).toBe(false);
    expect(isProxyPath('/sandbox/ex/jira/c1/rest/api/3/myself')).toBe(false);
  });
});

describe('routeProductPathsAsSent', () => {
  it.each([
    ['/v1/users/a%40b/proxy/jira/c1/rest/%zz/%2e%2e?q=%20', '/v1/users/a%40b/proxy/jira/c1/rest/%25zz/%252e%252e?q=%20'],
    ['/v1/users/u/proxy/jira/c1/rest/api/3/myself', '/v1/users/u/proxy/jira/c1/rest/api/3/myself'],
    ['/v1/users/u/access-token?x=%zz', '/v1/users/u/access-token?x=%zz'],
  ])('routes %s as %s', (url, routed) => {
    const req = {
      url,
      get path() {
        return this.url.split('?')[0];
      },
    };
    let called = false;
    routeProductPathsAsSent()(req as never, {} as never, () => (called = true));
    expect([req.url, called]).toEqual([routed, true]);
  });
});
