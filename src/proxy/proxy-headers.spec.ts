import { describe, expect, it } from '@jest/globals';
import { answeredHeaders, forwardedRequestHeaders, isAnsweredHeader } from './proxy-headers.js';

describe('forwardedRequestHeaders', () => {
  it("passes on only Accept, Accept-Language, Content-Type, X-Atlassian-Token and X-ExperimentalApi of the caller's headers", () => {
    const incoming = {
      accept: 'application/json',
      'accept-language': 'de-DE',
      'content-type': 'application/json; charset=utf-8',
      'x-atlassian-token': 'no-check',
      'x-experimentalapi': 'opt-in',
      authorization: 'Bearer the-api-key',
      'proxy-authorization': 'Basic eHg6eXk=',
      cookie: 'session=1',
      'x-forwarded-for': '203.0.113.7',
      'x-forwarded-host': 'evil.example',
      'x-forwarded-proto': 'http',
      forwarded: 'for=203.0.113.7;host=evil.example',
      'x-real-ip': '203.0.113.7',
      via: '1.1 proxy',
      host: 'tokens.example.com',
      origin: 'https://evil.example',
      referer: 'https://evil.example/page',
      connection: 'keep-alive, x-atlassian-token',
      'transfer-encoding': 'chunked',
      'content-length': '13',
      'accept-encoding': 'gzip',
      te: 'trailers',
      upgrade: 'websocket',
      'x-request-id': 'req-1',
      'x-http-method-override': 'DELETE',
      'user-agent': 'curl/8',
    };
    expect(forwardedRequestHeaders(incoming)).toEqual({
      accept: 'application/json',
      'accept-language': 'de-DE',
      'content-type': 'application/json; charset=utf-8',
      'x-atlassian-token': 'no-check',
      'x-experimentalapi': 'opt-in',
    });
  });

  it('sends none of them when the caller sent none', () => {
    expect(forwardedRequestHeaders({ authorization: 'Bearer k' })).toEqual({});
  });
});

describe("Atlassian's answer headers", () => {
  it.each([
    'Content-Type',
    'Retry-After',
    'X-RateLimit-Limit',
    'X-RateLimit-Remaining',
    'X-RateLimit-Reset',
    'X-RateLimit-NearLimit',
    'x-ratelimit-anything-new',
    'RateLimit-Reason',
    'RateLimit-Policy',
    'Beta-RateLimit',
    'Beta-RateLimit-Policy',
    'Beta-Retry-After',
    'Link',
    'X-AREQUESTID',
  ])('passes on %s', (name) => {
    expect(isAnsweredHeader(name)).toBe(true);
  });

  it.each([
    'Set-Cookie',
    'Server',
    'Content-Encoding',
    'Transfer-Encoding',
    'Connection',
    'Keep-Alive',
    'Location',
    'WWW-Authenticate',
    'Strict-Transport-Security',
    'Access-Control-Allow-Origin',
    'Cache-Control',
    'ETag',
    'Vary',
    'X-Frame-Options',
    'Timing-Allow-Origin',
    'X-Seraph-LoginReason',
    'X-AUSERNAME',
    'X-Beta-RateLimit-Reason',
    'RateLimit',
    'X-RateLimit',
  ])('drops %s', (name) => {
    expect(isAnsweredHeader(name)).toBe(false);
  });

  it('answers the allowed headers and the body length of an answer', () => {
    const answer = new Headers({
      'content-type': 'application/json',
      'content-length': '2',
      'set-cookie': 'atlassian.xsrf.token=1',
      'x-ratelimit-remaining': '7',
      server: 'AtlassianEdge',
    });
    expect(answeredHeaders(answer)).toEqual([
      ['content-length', '2'],
      ['content-type', 'application/json'],
      ['x-ratelimit-remaining', '7'],
    ]);
  });
});
