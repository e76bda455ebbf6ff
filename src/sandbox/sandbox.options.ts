import { DEFAULT_HOURLY_QUOTA } from './sandbox.rate-limits.js';

export interface SandboxOptions {
  clientId: string;
  clientSecret: string;
  /** The registered callback URL(s); /authorize and the code exchange compare against them byte for byte. */
  redirectUris: string[];
  appName?: string;
  accessTokenTtlSeconds?: number;
  codeTtlSeconds?: number;
  reuseLeewaySeconds?: number;
  refreshInactivitySeconds?: number;
}

/** The timing rules, changeable at run time through `POST /_control/settings`. */
export interface SandboxSettings {
  accessTokenTtlSeconds: number;
  codeTtlSeconds: number;
  reuseLeewaySeconds: number;
  refreshInactivitySeconds: number;
  /** Answer without `refresh_token` even with offline_access, as some Atlassian answers have been seen to. */
  omitRefreshToken: boolean;
  /** A grant ends this long after the user's latest consent, whatever the refreshes (shortened for tests). */
  consentLifetimeSeconds: number;
  /** Product calls the whole app may make per clock hour before every one is answered 429 jira-quota-global-based. */
  hourlyQuota: number;
  /** A Jira dynamic webhook lives this long after its registration or last extension (shortened for tests). */
  jiraWebhookLifetimeSeconds: number;
  /** The share of deliveries sent twice with the same identifier, as Jira's retries do, when a delivery does not say. */
  jiraWebhookDuplicateRate: number;
}

/**
 * Atlassian's documented values: 1 h access tokens, ~10 min codes, 10 min reuse leeway, 90 days of inactivity, 365 days
 * from consent to the grant's end, and 30 days of life for a Jira dynamic webhook.
 */
export const DEFAULT_SETTINGS: SandboxSettings = {
  accessTokenTtlSeconds: 3600,
  codeTtlSeconds: 600,
  reuseLeewaySeconds: 600,
  refreshInactivitySeconds: 90 * 24 * 3600,
  omitRefreshToken: false,
  consentLifetimeSeconds: 365 * 24 * 3600,
  hourlyQuota: DEFAULT_HOURLY_QUOTA,
  jiraWebhookLifetimeSeconds: 30 * 24 * 3600,
  jiraWebhookDuplicateRate: 0.1,
};

export const DEFAULT_APP_NAME = 'Atlassian token service (sandbox)';

export function initialSettings(options: SandboxOptions): SandboxSettings {
  return {
    accessTokenTtlSeconds: options.accessTokenTtlSeconds ?? DEFAULT_SETTINGS.accessTokenTtlSeconds,
    codeTtlSeconds: options.codeTtlSeconds ?? DEFAULT_SETTINGS.codeTtlSeconds,
    reuseLeewaySeconds: options.reuseLeewaySeconds ?? DEFAULT_SETTINGS.reuseLeewaySeconds,
    refreshInactivitySeconds: options.refreshInactivitySeconds ?? DEFAULT_SETTINGS.refreshInactivitySeconds,
    omitRefreshToken: false,
    consentLifetimeSeconds: DEFAULT_SETTINGS.consentLifetimeSeconds,
    hourlyQuota: DEFAULT_SETTINGS.hourlyQuota,
    jiraWebhookLifetimeSeconds: DEFAULT_SETTINGS.jiraWebhookLifetimeSeconds,
    jiraWebhookDuplicateRate: DEFAULT_SETTINGS.jiraWebhookDuplicateRate,
  };
}
