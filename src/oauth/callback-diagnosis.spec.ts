import { describe, expect, it } from '@jest/globals';
import { diagnoseRejectedCode, inspectCode, type RejectedCodeFacts } from './callback-diagnosis.js';

const CALLBACK = 'https://tokens.example.com/auth/atlassian/callback';
const CODE = 'eyJhbGciOiJIUzI1NiJ9.eyJqdGkiOiIxMjMifQ.c2lnbmF0dXJl';

const fresh: RejectedCodeFacts = {
  atlassianError: 'invalid_grant',
  atlassianDescription: 'Invalid authorization code',
  stateUsedBefore: false,
  secondsSinceAuthorize: 20,
  authorizeRedirectUri: CALLBACK,
  exchangeRedirectUri: CALLBACK,
  code: CODE,
};

function verdicts(facts: RejectedCodeFacts): Record<string, string> {
  return Object.fromEntries(diagnoseRejectedCode(facts).causes.map((c) => [c.cause, c.verdict]));
}

describe('diagnoseRejectedCode', () => {
  it('with a fresh, intact, first-time code, points at the registered Callback URL and says what it ruled out', () => {
    const diagnosis = diagnoseRejectedCode(fresh);
    expect(diagnosis.summary).toBe('Atlassian refused the sign-in code (invalid_grant: Invalid authorization code).');
    expect(diagnosis.causes.map((c) => [c.cause, c.verdict])).toEqual([
      ['redirect_uri_mismatch', 'possible'],
      ['code_reused', 'unlikely'],
      ['code_altered', 'unlikely'],
      ['code_expired', 'ruled_out'],
    ]);
    const redirect = diagnosis.causes[0].explanation;
    expect(redirect).toContain(CALLBACK);
    expect(redirect).toContain('byte for byte, trailing slash included');
    expect(diagnosis.causes.find((c) => c.cause === 'code_expired')!.explanation).toContain('20 seconds');
  });

  it('blames reuse when the sign-in link had been used before', () => {
    expect(verdicts({ ...fresh, stateUsedBefore: true }).code_reused).toBe('likely');
  });

  it('judges expiry by the time since the authorization request, and by invalid_request', () => {
    expect(verdicts({ ...fresh, secondsSinceAuthorize: 59 }).code_expired).toBe('ruled_out');
    expect(verdicts({ ...fresh, secondsSinceAuthorize: 300 }).code_expired).toBe('possible');
    expect(verdicts({ ...fresh, secondsSinceAuthorize: 660 }).code_expired).toBe('likely');
    const tooOld = diagnoseRejectedCode({
      ...fresh,
      atlassianError: 'invalid_request',
      atlassianDescription: 'authorization_code is invalid',
    });
    expect(tooOld.causes[0]).toMatchObject({ cause: 'code_expired', verdict: 'likely' });
    expect(
      diagnoseRejectedCode({ ...fresh, secondsSinceAuthorize: 300 }).causes.find((c) => c.cause === 'code_expired')!.explanation,
    ).toContain('5 minutes');
  });

  it('blames a redirect_uri that changed between the two requests', () => {
    const diagnosis = diagnoseRejectedCode({ ...fresh, authorizeRedirectUri: `${CALLBACK}/` });
    expect(diagnosis.causes[0]).toMatchObject({ cause: 'redirect_uri_mismatch', verdict: 'likely' });
    expect(diagnosis.causes[0].explanation).toContain(`${CALLBACK}/`);
  });

  it.each([
    ['a space where a + was', CODE.replace('.', ' '), 'likely'],
    ['%-escapes left by double encoding', CODE.replace('.', '%2E'), 'likely'],
    ['unusual characters', `${CODE}<>`, 'possible'],
    ['only URL-safe characters', CODE, 'unlikely'],
  ])('judges the code as received: %s', (_name, code, verdict) => {
    expect(verdicts({ ...fresh, code }).code_altered).toBe(verdict);
  });

  it('never repeats the code', () => {
    for (const code of [CODE, CODE.replace('.', ' '), CODE.replace('.', '%2E')]) {
      const text = JSON.stringify(diagnoseRejectedCode({ ...fresh, code, stateUsedBefore: true }));
      expect(text).not.toContain(code);
      expect(text).not.toContain(CODE.slice(0, 20));
    }
  });
});

describe('inspectCode', () => {
  it('reports length and what looks altered', () => {
    expect(inspectCode('abc')).toEqual({ length: 3, whitespace: false, percentEscapes: false, unusualCharacters: false });
    expect(inspectCode('a b%2Fc')).toEqual({ length: 7, whitespace: true, percentEscapes: true, unusualCharacters: false });
    expect(inspectCode('a"b')).toMatchObject({ unusualCharacters: true });
  });
});
