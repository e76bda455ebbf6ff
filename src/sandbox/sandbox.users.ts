import { createHash } from 'node:crypto';

/** One entry of accessible-resources: `id` is the cloudId; a site appears once per product it hosts. */
export interface SandboxSite {
  id: string;
  name: string;
  url: string;
  scopes: string[];
  avatarUrl: string;
}

export interface SandboxUser {
  login: string;
  accountId: string;
  name: string;
  email: string;
  sites: SandboxSite[];
}

/** Names an ad-hoc user may take; short and URL-safe so they double as site subdomains. */
export const LOGIN_PATTERN = /^[a-z0-9-]{1,40}$/;
export const MAX_SITES_PER_USER = 100;
export const DEFAULT_AD_HOC_SITES = 1;

const JIRA_SCOPES = ['read:jira-work', 'write:jira-work', 'read:jira-user'];
const CONFLUENCE_SCOPES = ['read:confluence-content.all', 'write:confluence-content', 'search:confluence'];
const SITE_AVATAR_URL = 'https://site-admin-avatar-cdn.prod.public.atl-paas.net/avatars/240/rocket.png';

/** A UUID-shaped id derived from a seed, so ids stay the same across restarts, resets and replicas. */
function stableUuid(seed: string): string {
  const hex = createHash('sha256').update(seed).digest('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-a${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

/** Atlassian account ids look like `712020:<uuid>`; deriving it from the login keeps it stable. */
export function accountIdFor(login: string): string {
  return `712020:${stableUuid(`account:${login}`)}`;
}

/** Sites with the same name share one cloudId, which is how one site shows up once per product. */
function site(name: string, scopes: string[]): SandboxSite {
  return { id: stableUuid(`site:${name}`), name, url: `https://${name}.atlassian.net`, scopes, avatarUrl: SITE_AVATAR_URL };
}

function user(login: string, name: string, sites: SandboxSite[]): SandboxUser {
  return { login, accountId: accountIdFor(login), name, email: `${login}@sandbox.example`, sites };
}

/** The users offered on the consent page: alice has one site twice (Jira and Confluence), so clients must merge by id. */
export function fixtureUsers(): SandboxUser[] {
  return [
    user('alice', 'Alice Andersen', [
      site('acme', JIRA_SCOPES),
      site('acme', CONFLUENCE_SCOPES),
      site('alice-labs', JIRA_SCOPES),
      site('umbrella', JIRA_SCOPES),
    ]),
    user('bob', 'Bob Baker', [site('acme', JIRA_SCOPES)]),
    user('carol', 'Carol Chen', []),
  ];
}

/** Site names end in `-<n>`, which fixture names never do, so ad-hoc sites never collide with fixture sites. */
export function adHocUser(login: string, siteCount: number): SandboxUser {
  const sites = Array.from({ length: siteCount }, (_, index) => site(`${login}-${index + 1}`, JIRA_SCOPES));
  return user(login, `Sandbox user ${login}`, sites);
}
