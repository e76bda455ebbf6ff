import type { AppConfig } from '../config/app-config.js';
import { escapeHtml, renderPage } from '../oauth/connect-pages.js';

/** What a person who opens the service's address in a browser is told; in sandbox mode, how to try it. */
export function renderHomePage(config: AppConfig): string {
  const docs =
    '<p>Its API, for your backend, is described at <a href="/docs">/docs</a>; readiness at <a href="/health/ready">/health/ready</a>.</p>';
  if (!config.atlassian.sandbox) {
    return renderPage(
      'plain',
      'Atlassian token service',
      `<p>This service connects the users of a SaaS backend to Jira and Confluence Cloud and keeps their tokens fresh. There is nothing to do here in a browser.</p>${docs}`,
    );
  }
  const key = config.apiKeysDefaulted ? 'dev' : '<one of API_KEYS>';
  const connect = `curl -X POST -H 'Authorization: Bearer ${key}' ${config.publicUrl}/v1/users/demo-user/connect`;
  return renderPage(
    'plain',
    'Atlassian token service',
    `<p>This service connects the users of a SaaS backend to Jira and Confluence Cloud and keeps their tokens fresh.</p>` +
      `<p><strong>It runs in sandbox mode:</strong> a built-in stand-in plays Atlassian at <a href="/sandbox">/sandbox</a>, with made-up users and sites. Nothing here reaches Atlassian.</p>` +
      docs +
      `<h2>Try it in 2 minutes</h2><p>Ask for a connect link as your backend would, then open its url in this browser:</p>` +
      `<pre>${escapeHtml(connect)}</pre>` +
      `<p>The rest of the tour is in README.md, under “Try it in 2 minutes”.</p>`,
  );
}
