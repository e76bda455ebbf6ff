import type { GatedCall } from '../atlassian/atlassian-call.gate.js';
import type { AtlassianProduct } from '../atlassian/atlassian.client.js';

/** What a pause holds back: every call of a product, every call to one site, or the writes to one issue. */
export type ScopeKind = 'app' | 'site' | 'issue';

export interface PauseScope {
  /** `jira`, `jira/<cloudId>`, `jira/<cloudId>/issue/<KEY>`: the key the pause is stored and shared under. */
  readonly key: string;
  readonly kind: ScopeKind;
  readonly product: AtlassianProduct;
}

const READS = new Set(['GET', 'HEAD', 'OPTIONS']);
/** `/rest/api/{2,3}/issue/{issueIdOrKey}…` */
const ISSUE_PATH = /^\/rest\/api\/[23]\/issue\/([^/]+)(?:\/|$)/;
/** An issue id (digits) or key (`ABC-123`); other words in that place name sub-resources (`bulk`, `picker`, …). */
const ISSUE_ID_OR_KEY = /^(?:\d+|[A-Za-z][A-Za-z0-9_]*-\d+)$/;

/** The scopes a call falls in: any of them paused holds it back. Platform calls fall in none. */
export function scopesOf(call: GatedCall): PauseScope[] {
  if (call.product === 'platform' || call.cloudId === undefined) return [];
  const scopes = [appScope(call.product), siteScope(call.product, call.cloudId)];
  const issue = READS.has(call.method.toUpperCase()) ? undefined : issueOf(call.path);
  if (issue !== undefined) scopes.push(issueScope(call.product, call.cloudId, issue));
  return scopes;
}

/**
 * The scope a 429 pauses. An hourly quota shared by all tenants stops the product app-wide; a tenant's quota, a
 * burst, or a 429 that names no reason (or one not known here) stops the site; a per-issue write limit stops writes
 * to that issue. Atlassian scopes its burst limit to one endpoint and method of a tenant: a burst pause lasts
 * seconds, and holding the whole site for them is the safe side of that. The platform calls (accessible-resources,
 * /me) are metered by none of the products' limits: their 429 pauses nothing, its caller gets the Retry-After.
 */
export function scopeOfLimit(call: GatedCall, reason: string | undefined): PauseScope | undefined {
  if (call.product === 'platform' || call.cloudId === undefined) return undefined;
  if (reason === 'jira-quota-global-based') return appScope(call.product);
  const issue = reason === 'jira-per-issue-on-write' ? issueOf(call.path) : undefined;
  return issue === undefined ? siteScope(call.product, call.cloudId) : issueScope(call.product, call.cloudId, issue);
}

/** The `{issueIdOrKey}` of an issue path, upper-cased (Jira's keys are case-insensitive), or undefined. */
export function issueOf(path: string): string | undefined {
  const segment = ISSUE_PATH.exec(path)?.[1];
  if (segment === undefined) return undefined;
  let decoded: string;
  try {
    decoded = decodeURIComponent(segment);
  } catch {
    return undefined;
  }
  return ISSUE_ID_OR_KEY.test(decoded) ? decoded.toUpperCase() : undefined;
}

function appScope(product: AtlassianProduct): PauseScope {
  return { key: product, kind: 'app', product };
}

function siteScope(product: AtlassianProduct, cloudId: string): PauseScope {
  return { key: `${product}/${cloudId}`, kind: 'site', product };
}

function issueScope(product: AtlassianProduct, cloudId: string, issue: string): PauseScope {
  return { key: `${product}/${cloudId}/issue/${issue}`, kind: 'issue', product };
}
