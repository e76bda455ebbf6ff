import { createHash } from 'node:crypto';
import type { AccessibleResource } from '../atlassian/atlassian.types.js';
import type { CauseAssessment } from './callback-diagnosis.js';
import { CONNECT_FAILURES, type ConnectFailure } from './connect-failure.js';

export const SERVICE_NAME = 'Atlassian token service';

/**
 * The pages' only style. The Content-Security-Policy of the browser routes allows exactly this stylesheet (by
 * hash) and nothing else: no scripts, images, fonts or frames, and nothing from another origin.
 */
const STYLE = `
:root { color-scheme: light dark; --fg: #172b4d; --muted: #5e6c84; --bg: #f4f5f7; --card: #fff; --ok: #006644; --bad: #ae2a19; --line: #dfe1e6; }
@media (prefers-color-scheme: dark) { :root { --fg: #e6e8eb; --muted: #9fadbc; --bg: #1d2125; --card: #22272b; --ok: #7ee2b8; --bad: #fd9891; --line: #38414a; } }
* { box-sizing: border-box; }
body { margin: 0; min-height: 100vh; display: flex; align-items: flex-start; justify-content: center; background: var(--bg); color: var(--fg);
  font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; padding: 1rem; }
main { width: 100%; max-width: 34rem; margin-top: 8vh; background: var(--card); border: 1px solid var(--line); border-radius: 12px; padding: 1.5rem; }
.service { margin: 0 0 1rem; font-size: .8rem; letter-spacing: .04em; text-transform: uppercase; color: var(--muted); }
h1 { margin: 0 0 .75rem; font-size: 1.4rem; line-height: 1.25; }
.ok h1 { color: var(--ok); } .bad h1 { color: var(--bad); }
h2 { margin: 1.25rem 0 .5rem; font-size: 1rem; }
p, li { overflow-wrap: anywhere; }
ul { margin: 0; padding-left: 1.2rem; }
li + li { margin-top: .4rem; }
.site span { display: block; color: var(--muted); font-size: .9rem; }
.verdict { font-weight: 600; }
.reference { margin-top: 1.5rem; font-size: .8rem; color: var(--muted); }
`;

export const PAGE_STYLE_HASH = `'sha256-${createHash('sha256').update(STYLE, 'utf8').digest('base64')}'`;

export interface SuccessPageContent {
  readonly accountName?: string;
  readonly sites: readonly AccessibleResource[];
}

export function renderSuccessPage(content: SuccessPageContent): string {
  const who = content.accountName ? ` as ${escapeHtml(content.accountName)}` : '';
  const sites =
    content.sites.length === 0
      ? '<p>Your Atlassian account has no sites this app can reach yet. Once a site admin gives you access, it will show up without connecting again.</p>'
      : `<h2>Sites this app can now reach</h2><ul>${content.sites.map(siteItem).join('')}</ul>`;
  return page(
    'ok',
    'Your Atlassian account is connected',
    `<p>You are connected${who}. You can close this page and go back to the app.</p>${sites}`,
  );
}

export function renderFailurePage(failure: ConnectFailure, reference?: string): string {
  const { title, advice } = CONNECT_FAILURES[failure.code];
  const causes = failure.diagnosis?.causes ?? [];
  const open = causes.filter((c) => c.verdict === 'likely' || c.verdict === 'possible');
  const closed = causes.filter((c) => c.verdict === 'unlikely' || c.verdict === 'ruled_out');
  const diagnosis = [
    open.length > 0 ? `<h2>Likely causes</h2><ul>${open.map(causeItem).join('')}</ul>` : '',
    closed.length > 0 ? `<h2>Unlikely or ruled out</h2><ul>${closed.map(causeItem).join('')}</ul>` : '',
  ].join('');
  const footer = reference ? `<p class="reference">Reference: ${escapeHtml(reference)} · error ${failure.code}</p>` : '';
  return page(
    'bad',
    title,
    `<p>${escapeHtml(failure.detail)}</p>${diagnosis}<h2>What to try</h2><p>${escapeHtml(advice)}</p>${footer}`,
  );
}

const CAUSE_NAMES: Record<CauseAssessment['cause'], string> = {
  code_reused: 'Code already used',
  code_expired: 'Code expired',
  redirect_uri_mismatch: 'redirect_uri differs from the registered Callback URL',
  code_altered: 'Code altered on its way',
};

const VERDICT_NAMES: Record<CauseAssessment['verdict'], string> = {
  likely: 'likely',
  possible: 'possible',
  unlikely: 'unlikely',
  ruled_out: 'ruled out',
};

function causeItem(cause: CauseAssessment): string {
  return `<li><span class="verdict">${CAUSE_NAMES[cause.cause]} (${VERDICT_NAMES[cause.verdict]}).</span> ${escapeHtml(cause.explanation)}</li>`;
}

function siteItem(site: AccessibleResource): string {
  return `<li class="site">${escapeHtml(site.name)}<span>${escapeHtml(site.url)}</span></li>`;
}

function page(tone: 'ok' | 'bad', title: string, body: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>${escapeHtml(title)} · ${SERVICE_NAME}</title>
<style>${STYLE}</style>
</head>
<body>
<main class="${tone}">
<p class="service">${SERVICE_NAME}</p>
<h1>${escapeHtml(title)}</h1>
${body}
</main>
</body>
</html>
`;
}

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
