import { describe, expect, it } from '@jest/globals';
import { consentedBefore, consentEnd, consentExpiresAt } from './consent.policy.js';

const DAY = 86_400_000;
const consentedAt = new Date('2026-03-02T09:00:00.000Z');
const at = (days: number) => new Date(consentedAt.getTime() + days * DAY);

describe('the consent clock', () => {
  it('ends 365 days after consent, and a bound on the end is a bound on consent a year before', () => {
    expect(consentExpiresAt(consentedAt)).toEqual(at(365));
    expect(consentedBefore(at(365))).toEqual(consentedAt);
  });

  it('takes a refused grant as its year ending from the re-consent warning on', () => {
    expect(consentEnd(consentedAt, at(351), 14 * DAY)).toMatchObject({ reason: 'consent_expired' });
    expect(consentEnd(consentedAt, at(370), 14 * DAY)?.message).toContain(`yearly consent ran out`);
    expect(consentEnd(consentedAt, new Date(at(351).getTime() - 1), 14 * DAY)).toBeNull();
  });

  it('never from later than a day before the end, however short the warning', () => {
    expect(consentEnd(consentedAt, at(364), 0.5 * DAY)).toMatchObject({ reason: 'consent_expired' });
    expect(consentEnd(consentedAt, new Date(at(364).getTime() - 1), 0.5 * DAY)).toBeNull();
  });
});
