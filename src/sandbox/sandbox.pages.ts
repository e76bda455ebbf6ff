import type { AuthorizeError, AuthorizeRequest } from './sandbox.idp.js';
import type { SandboxUser } from './sandbox.users.js';

/** Plain words for the scopes a user is asked to grant; unknown scopes are shown by name. */
const SCOPE_WORDS: Record<string, string> = {
  'read:jira-work': 'Read Jira project and issue data',
  'write:jira-work': 'Create and edit Jira issues, comments and worklogs',
  'read:jira-user': 'See Jira user details such as names and time zones',
  'manage:jira-project': 'Manage Jira projects and their settings',
  'manage:jira-configuration': 'Manage Jira settings',
  'manage:jira-webhook': 'Manage Jira webhooks',
  'read:confluence-content.all': 'Read Confluence pages, blog posts and comments',
  'read:confluence-content.summary': 'Read summaries of Confluence content',
  'read:confluence-space.summary': 'Read summaries of Confluence spaces',
  'write:confluence-content': 'Create and edit Confluence pages and blog posts',
  'search:confluence': 'Search Confluence',
  'read:confluence-user': 'See Confluence user details',
  'read:me': 'See your profile',
  'read:account': 'See your account details',
  offline_access: 'Stay connected when you are not using the app',
};

const STYLE = `
*{box-sizing:border-box}
body{margin:0;font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#172b4d;background:#f4f5f7}
.banner{background:#ffab00;color:#172b4d;font-weight:700;text-align:center;padding:.6rem 1rem}
main{max-width:34rem;margin:1.5rem auto;padding:1.5rem;background:#fff;border-radius:8px;box-shadow:0 1px 3px rgba(9,30,66,.25)}
@media (max-width:36rem){main{margin:0;border-radius:0;box-shadow:none}}
h1{font-size:1.35rem;line-height:1.3;margin:0 0 .5rem}
h2{font-size:1rem;margin:1.25rem 0 .5rem}
.muted{color:#5e6c84;font-size:.9rem}
code{font-size:.85em;background:#f4f5f7;padding:0 .25rem;border-radius:3px;word-break:break-all}
ul{padding-left:1.25rem;margin:.25rem 0}
li{margin:.25rem 0}
fieldset{border:0;padding:0;margin:0}
legend{font-weight:700;margin:1.25rem 0 .5rem}
.user{display:flex;gap:.75rem;align-items:flex-start;padding:.6rem .75rem;border:1px solid #dfe1e6;border-radius:6px;margin:.4rem 0;cursor:pointer}
.user input{margin-top:.35rem}
.other{display:grid;gap:.5rem;grid-template-columns:1fr 6rem;margin-top:.5rem}
.other label{font-size:.85rem;color:#5e6c84}
.other input{width:100%;font:inherit;padding:.4rem .5rem;border:1px solid #dfe1e6;border-radius:4px}
.actions{display:flex;gap:.75rem;justify-content:flex-end;margin-top:1.5rem;flex-wrap:wrap}
button{font:inherit;font-weight:600;padding:.6rem 1.4rem;border-radius:4px;border:1px solid transparent;cursor:pointer;min-width:7rem}
.accept{background:#0052cc;color:#fff}
.deny{background:#fff;color:#172b4d;border-color:#dfe1e6}
.alert{background:#ffebe6;border-left:4px solid #de350b;padding:.6rem .75rem;border-radius:4px;margin:.75rem 0}
`;

export function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, (char) => `&#${char.charCodeAt(0)};`);
}

function layout(title: string, body: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>${escapeHtml(title)} · Sandbox</title>
<style>${STYLE}</style>
</head>
<body>
<div class="banner" role="note">Sandbox — not Atlassian. Fake accounts and tokens for development and tests.</div>
<main>
${body}
</main>
</body>
</html>
`;
}

function describeScope(scope: string): string {
  const words = SCOPE_WORDS[scope];
  return words ? `${escapeHtml(words)} <code>${escapeHtml(scope)}</code>` : `<code>${escapeHtml(scope)}</code>`;
}

function hidden(name: string, value: string | undefined): string {
  return value === undefined ? '' : `<input type="hidden" name="${name}" value="${escapeHtml(value)}">`;
}

function siteCount(user: SandboxUser): string {
  const count = new Set(user.sites.map((site) => site.id)).size;
  return count === 1 ? '1 site' : `${count} sites`;
}

function userChoice(user: SandboxUser, checked: boolean): string {
  return `<label class="user"><input type="radio" name="user" value="${escapeHtml(user.login)}"${checked ? ' checked' : ''}>
<span><strong>${escapeHtml(user.name)}</strong><br><span class="muted">${escapeHtml(user.email)} · ${siteCount(user)}</span></span></label>`;
}

export interface ConsentPage {
  appName: string;
  request: AuthorizeRequest;
  users: SandboxUser[];
  message?: string;
}

/** The form posts back every authorize parameter, because the sandbox keeps no per-browser state. */
export function renderConsentPage({ appName, request, users, message }: ConsentPage): string {
  const returnTo = new URL(request.redirectUri).origin;
  return layout(
    'Authorize app',
    `<h1>${escapeHtml(appName)} wants to access your Atlassian account</h1>
<p class="muted">Afterwards you go back to <code>${escapeHtml(returnTo)}</code>.</p>
${message ? `<p class="alert" role="alert">${escapeHtml(message)}</p>` : ''}
<form method="post" action="authorize">
${hidden('audience', request.audience)}
${hidden('client_id', request.clientId)}
${hidden('redirect_uri', request.redirectUri)}
${hidden('response_type', request.responseType)}
${hidden('scope', request.scope)}
${hidden('state', request.state)}
${hidden('prompt', request.prompt)}
<h2>It will be able to</h2>
<ul>${request.scopes.map((scope) => `<li>${describeScope(scope)}</li>`).join('')}</ul>
<fieldset>
<legend>Continue as</legend>
${users.map((user, index) => userChoice(user, index === 0)).join('\n')}
<div class="other">
<label for="other_user">Or any other user name (a–z, 0–9, -); it wins when filled in</label>
<label for="sites">Sites</label>
<input id="other_user" name="other_user" pattern="[a-z0-9\\-]{1,40}" maxlength="40" autocomplete="off" placeholder="user-42">
<input id="sites" name="sites" type="number" min="0" max="100" inputmode="numeric" placeholder="1">
</div>
</fieldset>
<div class="actions">
<button class="accept" name="decision" value="accept">Accept</button>
<button class="deny" name="decision" value="deny">Deny</button>
</div>
</form>`,
  );
}

/** Shown instead of redirecting, as Atlassian does, when the request cannot be trusted. */
export function renderErrorPage(error: AuthorizeError): string {
  return layout(
    'Something went wrong',
    `<h1>This authorization request cannot be completed</h1>
<p class="alert" role="alert"><strong>${escapeHtml(error.error)}</strong>: ${escapeHtml(error.description)}</p>
<p class="muted">As at Atlassian, an invalid authorization request ends here instead of going back to the app. Fix the request and start again.</p>`,
  );
}
