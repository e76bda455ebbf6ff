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

/** The least time before a consent's end from which a refused grant is taken to have ended with it. */
const CONSENT_END_MARGIN_MS = DAY_MS;

/** Why a refresh found the grant gone, when that is its yearly end: the webhook's `reason` and the connection's lastError. */
export interface ConsentEnd {
  readonly reason: 'consent_expired';
  readonly message: string;
}

/**
 * Atlassian's refusal (`invalid_grant`) does not say whether the grant was revoked or its year is up. From the time the
 * user is warned (RECONSENT_WARNING_DAYS before the end, and never less than a day, since our consentedAt is the
 * callback's time and clocks differ), it is taken as the year ending: the user was asked to reconnect for exactly this.
 */
export function consentEnd(consentedAt: Date, now: Date, warningMs: number): ConsentEnd | null {
  const endingFrom = consentExpiresAt(consentedAt).getTime() - Math.max(warningMs, CONSENT_END_MARGIN_MS);
  if (now.getTime() < endingFrom) return null;
  return {
    reason: 'consent_expired',
    message:
      `The user's yearly consent ran out: Atlassian ends every grant a year after the user consents (this one on ${consentedAt.toISOString()}) ` +
      'and now refuses it; the user must connect again.',
  };
}
