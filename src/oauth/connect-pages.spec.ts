import { createHash } from 'node:crypto';
import { describe, expect, it } from '@jest/globals';
import { diagnoseRejectedCode } from './callback-diagnosis.js';
import { ConnectFailure } from './connect-failure.js';
import { PAGE_STYLE_HASH, renderFailurePage, renderSuccessPage } from './connect-pages.js';

describe('result pages', () => {
  it('list the user’s sites, escaped', () => {
    const html = renderSuccessPage({
      accountName: 'Eve <script>',
      sites: [{ id: 'c1', name: 'acme & co', url: 'https://acme.atlassian.net', scopes: [], avatarUrl: 'https://cdn.example/a.png' }],
    });
    expect(html).toContain('as Eve &#60;script&#62;');
    expect(html).toContain('acme &#38; co');
    expect(html).toContain('https://acme.atlassian.net');
    expect(html).not.toContain('cdn.example');
  });

  it('say so when there is no site yet', () => {
    expect(renderSuccessPage({ sites: [] })).toContain('no sites this app can reach yet');
  });

  it('show a failure with what to try, the reference, and the likely causes apart from the ruled-out ones', () => {
    const diagnosis = diagnoseRejectedCode({
      atlassianError: 'invalid_grant',
      atlassianDescription: 'Invalid authorization code',
      stateUsedBefore: false,
      secondsSinceAuthorize: 5,
      authorizeRedirectUri: 'https://t.example/cb',
      exchangeRedirectUri: 'https://t.example/cb',
      code: 'the-code-value',
    });
    const html = renderFailurePage(new ConnectFailure('invalid_grant', diagnosis.summary, diagnosis), 'req-123');
    expect(html).toContain('<h1>Atlassian did not accept the sign-in</h1>');
    expect(html).toContain('What to try');
    expect(html).toContain('Reference: req-123 · error invalid_grant');
    const likely = html.slice(html.indexOf('Likely causes'), html.indexOf('Unlikely or ruled out'));
    const ruledOut = html.slice(html.indexOf('Unlikely or ruled out'), html.indexOf('What to try'));
    expect(likely).toContain('redirect_uri differs from the registered Callback URL (possible)');
    expect(ruledOut).toContain('Code expired (ruled out)');
    expect(ruledOut).toContain('Code already used (unlikely)');
    expect(html).not.toContain('the-code-value');
  });

  it('carry the one stylesheet the Content-Security-Policy allows by hash', () => {
    const html = renderSuccessPage({ sites: [] });
    const style = /<style>([\s\S]*?)<\/style>/.exec(html)![1];
    expect(PAGE_STYLE_HASH).toBe(`'sha256-${createHash('sha256').update(style, 'utf8').digest('base64')}'`);
    expect(html).not.toMatch(/<script|<link|<img|style="/);
  });
});
