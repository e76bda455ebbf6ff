const DAY_MS = 86_400_000;

/**
 * Atlassian ends every grant 365 days after the user's consent, whatever the refreshes; a new consent starts another
 * year (ATLASSIAN.md, "Consent lifetime").
 */
export const CONSENT_LIFETIME_MS = 365 * DAY_MS;

/** When Atlassian ends the grant consented to at `consentedAt`. */
export function consentExpiresAt(consentedAt: Date): Date {
  return new Date(consentedAt.getTime() + CONSENT_LIFETIME_MS);
}

/** Consents given before the answer end before `expiresBefore`: the bound that a query on consented_at uses. */
export function consentedBefore(expiresBefore: Date): Date {
  return new Date(expiresBefore.getTime() - CONSENT_LIFETIME_MS);
}
