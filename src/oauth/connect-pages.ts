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
:root { color-scheme: light dark; --fg: #172b4d; --muted: #505f79; --bg: #f4f5f7; --card: #fff; --line: #dfe1e6; --soft: #f7f8f9;
  --ok: #216e4e; --ok-bg: #dcfff1; --bad: #ae2a19; --bad-bg: #ffeceb; --brand: #0c66e4; }
@media (prefers-color-scheme: dark) { :root { --fg: #dee4ea; --muted: #9fadbc; --bg: #161a1d; --card: #22272b; --line: #38414a; --soft: #2c333a;
  --ok: #7ee2b8; --ok-bg: #164b35; --bad: #fd9891; --bad-bg: #5d1f1a; --brand: #579dff; } }
* { box-sizing: border-box; }
body { margin: 0; min-height: 100vh; background: var(--bg); color: var(--fg); font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
  padding: 1.5rem 1rem 3rem; }
.service, main { max-width: 36rem; margin-left: auto; margin-right: auto; }
.service { display: flex; align-items: center; gap: .5rem; margin-top: 0; margin-bottom: 1rem; font-weight: 600; font-size: .95rem; color: var(--muted); }
.service::before { content: ""; width: .9rem; height: .9rem; border-radius: 3px; background: var(--brand); }
main { background: var(--card); border: 1px solid var(--line); border-radius: 12px; padding: 1.75rem 1.5rem 1.5rem; box-shadow: 0 1px 2px rgba(9, 30, 66, .08); }
@media (min-width: 40rem) { body { padding-top: 10vh; } main { padding: 2.25rem 2.5rem 2rem; } }
.icon { display: flex; align-items: center; justify-content: center; width: 3rem; height: 3rem; margin-bottom: 1rem; border-radius: 50%;
  font-size: 1.6rem; font-weight: 700; line-height: 1; }
.ok .icon { background: var(--ok-bg); }
.ok .icon::after { content: ""; width: .6rem; height: 1.15rem; margin-top: -.25rem; border: solid var(--ok); border-width: 0 .22rem .22rem 0; transform: rotate(45deg); }
.bad .icon { background: var(--bad-bg); color: var(--bad); }
.bad .icon::after { content: "!"; }
h1 { margin: 0 0 .75rem; font-size: 1.5rem; line-height: 1.25; }
h2 { margin: 1.75rem 0 .6rem; font-size: .8rem; letter-spacing: .05em; text-transform: uppercase; color: var(--muted); }
p { margin: 0 0 .75rem; }
p, li { overflow-wrap: anywhere; }
pre { margin: 0 0 .75rem; padding: .75rem; border-radius: 8px; background: var(--soft); white-space: pre-wrap; overflow-wrap: anywhere; font-size: .85rem; }
a { color: var(--brand); }
ul { margin: 0; padding: 0; list-style: none; }
.sites li { display: flex; align-items: center; gap: .75rem; padding: .65rem .75rem; border: 1px solid var(--line); border-radius: 8px; }
.sites li + li { margin-top: .5rem; }
.avatar { flex: none; display: flex; align-items: center; justify-content: center; width: 2.25rem; height: 2.25rem; border-radius: 6px;
  background: var(--brand); color: #fff; font-weight: 700; text-transform: uppercase; }
.site strong, .url { display: block; }
.url { color: var(--muted); font-size: .9rem; }
.causes li { padding: .75rem .9rem; border-left: 4px solid var(--muted); border-radius: 4px; background: var(--soft); }
.causes li + li { margin-top: .6rem; }
.verdict { display: block; font-weight: 700; }
details { margin-top: 1rem; border: 1px solid var(--line); border-radius: 8px; padding: .6rem .9rem; }
summary { cursor: pointer; color: var(--muted); }
details ul { margin-top: .6rem; }
details li + li { margin-top: .6rem; }
details .verdict { color: var(--muted); }
.next { margin-top: 1.75rem; padding: .9rem 1rem; border-radius: 8px; background: var(--soft); }
.next h2 { margin: 0 0 .35rem; }
.next p { margin: 0; }
.reference { margin: 1.25rem 0 0; font-size: .8rem; color: var(--muted); }
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
      : `<h2>Sites this app can now reach</h2><ul class="sites">${content.sites.map(siteItem).join('')}</ul>`;
  return renderPage(
    'ok',
    'Your Atlassian account is connected',
    `<p>You are connected${who}.</p>${sites}${next('What next', 'You can close this page and go back to the app.')}`,
  );
}

/** The browser that finished a sign-in opened its address again (a reload, the back button): nothing more happened. */
export function renderAlreadyConnectedPage(): string {
  return renderPage(
    'ok',
    'Your Atlassian account is connected',
    `<p>This sign-in has already finished; opening its address again changes nothing.</p>${next('What next', 'You can close this page and go back to the app.')}`,
  );
}

export function renderFailurePage(failure: ConnectFailure, reference?: string): string {
  const { title, advice } = CONNECT_FAILURES[failure.code];
  const causes = failure.diagnosis?.causes ?? [];
  const open = causes.filter((c) => c.verdict === 'likely' || c.verdict === 'possible');
  const closed = causes.filter((c) => c.verdict === 'unlikely' || c.verdict === 'ruled_out');
  const diagnosis = [
    open.length > 0 ? `<section class="causes"><h2>Likely causes</h2><ul>${open.map(causeItem).join('')}</ul></section>` : '',
    closed.length > 0
      ? `<details><summary>Unlikely or ruled out: ${closed.map((c) => CAUSE_NAMES[c.cause].toLowerCase()).join(', ')}</summary>` +
        `<ul>${closed.map(causeItem).join('')}</ul></details>`
      : '',
  ].join('');
  const footer = reference ? `<p class="reference">Reference: ${escapeHtml(reference)} · error ${failure.code}</p>` : '';
  return renderPage('bad', title, `<p>${escapeHtml(failure.detail)}</p>${diagnosis}${next('What to try', advice)}${footer}`);
}

/** What the person should do now: every result page ends with it. */
function next(heading: string, advice: string): string {
  return `<section class="next"><h2>${heading}</h2><p>${escapeHtml(advice)}</p></section>`;
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
  const initial = escapeHtml(site.name.charAt(0));
  return `<li class="site"><span class="avatar" aria-hidden="true">${initial}</span><div><strong>${escapeHtml(site.name)}</strong><span class="url">${escapeHtml(site.url)}</span></div></li>`;
}

/** A page in the service's style: 'ok' and 'bad' carry their mark above the title, 'plain' none. */
export function renderPage(tone: 'ok' | 'bad' | 'plain', title: string, body: string): string {
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
<p class="service">${SERVICE_NAME}</p>
<main class="${tone}">
${tone === 'plain' ? '' : '<div class="icon" aria-hidden="true"></div>\n'}
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
