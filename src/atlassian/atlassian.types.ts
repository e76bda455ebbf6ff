export interface TokenSet {
  readonly accessToken: string;
  /** Absent when the app was not granted offline_access (Atlassian then sends none). */
  readonly refreshToken?: string;
  readonly expiresInSeconds: number;
  readonly scopes: readonly string[];
}

export interface AtlassianAccount {
  readonly accountId: string;
  readonly name?: string;
  readonly email?: string;
}

/** A site (cloudId) the user's grant reaches, merged across products. */
export interface AccessibleResource {
  readonly id: string;
  readonly url: string;
  readonly name: string;
  readonly scopes: readonly string[];
  readonly avatarUrl: string | null;
}

/**
 * Atlassian's `RateLimit-Reason` values (developer.atlassian.com/cloud/jira/platform/rate-limiting): which of Jira's
 * independent limits a 429 comes from.
 */
export const RATE_LIMIT_REASONS = [
  'jira-quota-global-based',
  'jira-quota-tenant-based',
  'jira-burst-based',
  'jira-per-issue-on-write',
] as const;
export type RateLimitReason = (typeof RATE_LIMIT_REASONS)[number];

export type AtlassianProduct = 'jira' | 'confluence';
