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
.banner{background:#ffab00;color:#172b4d;text-align:center;padding:.5rem 1rem;font-size:.9rem}
.banner strong{font-size:1rem}
main{max-width:32rem;margin:2rem auto;padding:2rem;background:#fff;border-radius:8px;box-shadow:0 0 1px rgba(9,30,66,.31),0 4px 12px rgba(9,30,66,.15)}
@media (max-width:34rem){main{margin:0;padding:1.5rem 1.25rem;border-radius:0;box-shadow:none}}
.app-icon{display:flex;align-items:center;justify-content:center;width:3rem;height:3rem;margin-bottom:1rem;border-radius:8px;background:#0c66e4;color:#fff;font-size:1.4rem;font-weight:700}
h1{font-size:1.3rem;line-height:1.3;margin:0 0 1rem}
h2,legend{font-size:.8rem;font-weight:700;letter-spacing:.04em;text-transform:uppercase;color:#505f79;margin:1.5rem 0 .6rem;padding:0}
.muted{color:#505f79;font-size:.9rem}
code{font:.8rem/1.4 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;color:#505f79;overflow-wrap:anywhere}
.scopes{list-style:none;padding:0;margin:0;border:1px solid #dfe1e6;border-radius:6px}
.scopes li{padding:.55rem .75rem}
.scopes li+li{border-top:1px solid #dfe1e6}
.scopes code{display:block}
fieldset{border:0;padding:0;margin:1.5rem 0 0;min-width:0}
legend{margin-top:0}
.user{display:flex;gap:.75rem;align-items:center;padding:.6rem .75rem;border:1px solid #dfe1e6;border-radius:6px;margin:.5rem 0;cursor:pointer}
.user:has(input:checked){border-color:#0c66e4;background:#e9f2ff;box-shadow:inset 0 0 0 1px #0c66e4}
.user input{flex:none;width:1.1rem;height:1.1rem;margin:0;accent-color:#0c66e4}
.avatar{flex:none;display:flex;align-items:center;justify-content:center;width:2.25rem;height:2.25rem;border-radius:50%;background:#6e5dc6;color:#fff;font-weight:700}
.who strong,.who span{display:block}
details{margin:.75rem 0 0}
summary{cursor:pointer;color:#0c66e4;font-size:.95rem}
.other{display:grid;gap:.25rem .75rem;grid-template-columns:1fr 5.5rem;margin-top:.6rem}
.other label{font-size:.85rem;color:#505f79}
.other input{width:100%;font:inherit;padding:.45rem .6rem;border:1px solid #8590a2;border-radius:4px}
.other p{grid-column:1/-1;margin:.25rem 0 0;font-size:.85rem;color:#505f79}
.actions{display:flex;flex-direction:row-reverse;gap:.75rem;margin-top:1.75rem}
button{font:inherit;font-weight:600;padding:.6rem 1.5rem;border-radius:4px;border:1px solid transparent;cursor:pointer;min-width:7rem}
.accept{background:#0c66e4;color:#fff}
.deny{background:#fff;color:#172b4d;border-color:#8590a2}
@media (max-width:34rem){.actions{flex-direction:column}button{width:100%}}
.how{margin:1.75rem 0 0;padding-top:1rem;border-top:1px solid #dfe1e6}
.how .uri{display:block;margin:.25rem 0}
.alert{background:#ffeceb;border-left:4px solid #c9372c;padding:.6rem .75rem;border-radius:4px;margin:.75rem 0}
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
<div class="banner" role="note"><strong>Sandbox — not Atlassian.</strong> Fake accounts and tokens for development and tests.</div>
<main>
${body}
</main>
</body>
</html>
`;
}

function describeScope(scope: string): string {
  const words = SCOPE_WORDS[scope];
  return words ? `${escapeHtml(words)}<code>${escapeHtml(scope)}</code>` : `<code>${escapeHtml(scope)}</code>`;
}

function hidden(name: string, value: string | undefined): string {
  return value === undefined ? '' : `<input type="hidden" name="${name}" value="${escapeHtml(value)}">`;
}

function siteCount(user: SandboxUser): string {
  const count = new Set(user.sites.map((site) => site.id)).size;
  return count === 1 ? '1 site' : `${count} sites`;
}

function initial(name: string): string {
  return escapeHtml(name.charAt(0).toUpperCase());
}

function userChoice(user: SandboxUser, checked: boolean): string {
  return `<label class="user"><input type="radio" name="user" value="${escapeHtml(user.login)}"${checked ? ' checked' : ''}>
<span class="avatar" aria-hidden="true">${initial(user.name)}</span>
<span class="who"><strong>${escapeHtml(user.name)}</strong><span class="muted">${escapeHtml(user.email)} · ${siteCount(user)}</span></span></label>`;
}

export interface ConsentPage {
  appName: string;
  request: AuthorizeRequest;
  users: SandboxUser[];
  message?: string;
}

/** The form posts back every authorize parameter, because the sandbox keeps no per-browser state. */
export function renderConsentPage({ appName, request, users, message }: ConsentPage): string {
  return layout(
    'Authorize app',
    `<div class="app-icon" aria-hidden="true">${initial(appName)}</div>
<h1>${escapeHtml(appName)} is requesting access to your Atlassian account</h1>
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
<ul class="scopes">${request.scopes.map((scope) => `<li>${describeScope(scope)}</li>`).join('')}</ul>
<fieldset>
<legend>Continue as</legend>
${users.map((user, index) => userChoice(user, index === 0)).join('\n')}
<details>
<summary>Someone else</summary>
<div class="other">
<label for="other_user">User name</label>
<label for="sites">Sites</label>
<input id="other_user" name="other_user" pattern="[a-z0-9\\-]{1,40}" maxlength="40" autocomplete="off" placeholder="user-42">
<input id="sites" name="sites" type="number" min="0" max="100" inputmode="numeric" placeholder="1">
<p>Any name of a–z, 0–9 and -; the sandbox makes the user up with that many sites. Filled in, it is used instead of the user picked above.</p>
</div>
</details>
</fieldset>
<div class="actions">
<button class="accept" name="decision" value="accept">Accept</button>
<button class="deny" name="decision" value="deny">Deny</button>
</div>
</form>
<p class="how muted">This page stands in for Atlassian’s consent screen. Either button sends your browser back to
<code class="uri">${escapeHtml(request.redirectUri)}</code> with a one-time code (Accept) or <code>error=access_denied</code> (Deny).</p>`,
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
