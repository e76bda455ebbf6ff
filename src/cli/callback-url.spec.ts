import { describe, expect, it } from '@jest/globals';
import { parseCallbackUrl } from './callback-url.js';

const BASE = 'https://tokens.example.com/auth/atlassian/callback';
const STATE = 'AbCdEfGhIjKlMnOpQrStUvWxYz0123456789_-abcde';
const CODE = 'eyJhbGciOiJIUzI1NiJ9.eyJqdGkiOiJhYmMifQ.c2lnbmF0dXJl';

function failures(url: string): string[] {
  return parseCallbackUrl(url)
    .findings.filter((f) => f.status === 'fail')
    .map((f) => f.text);
}

describe('parseCallbackUrl', () => {
  it('reads a clean callback and finds nothing wrong', () => {
    const parsed = parseCallbackUrl(`${BASE}?code=${CODE}&state=${STATE}`);
    expect(STATE).toHaveLength(43);
    expect(parsed).toMatchObject({ location: BASE, code: CODE, state: STATE, otherParameters: [] });
    expect(parsed.findings).toEqual([expect.objectContaining({ status: 'ok' })]);
    expect(parsed.stateCandidates).toEqual([{ value: STATE, undoing: '' }]);
  });

  it('spots double encoding (%25) and offers the value decoded once more for the lookup', () => {
    const encodedTwice = encodeURIComponent(encodeURIComponent('AbC/dEf=='));
    const parsed = parseCallbackUrl(`${BASE}?code=${CODE}&state=${encodedTwice}`);
    expect(encodedTwice).toContain('%25');
    expect(failures(`${BASE}?code=${CODE}&state=${encodedTwice}`)).toEqual([expect.stringContaining('state is URL-encoded twice')]);
    expect(parsed.stateCandidates.map((c) => c.undoing)).toEqual(['', 'the second URL-encoding']);
    expect(parsed.stateCandidates[1].value).toBe('AbC/dEf==');
  });

  it('spots a "+" read as a space, and offers the value with the "+" back', () => {
    const parsed = parseCallbackUrl(`${BASE}?code=ab+cd&state=${STATE}`);
    expect(parsed.code).toBe('ab cd');
    expect(failures(`${BASE}?code=ab+cd&state=${STATE}`)).toEqual([expect.stringContaining('code contains "+" or a space')]);
    const spaced = parseCallbackUrl(`${BASE}?code=${CODE}&state=${STATE.slice(0, 20)}%20${STATE.slice(21)}`);
    expect(spaced.stateCandidates.map((c) => c.undoing)).toEqual(['', 'the "+" read as a space']);
  });

  it('spots a state cut short, and a %-escape cut in half', () => {
    expect(failures(`${BASE}?code=${CODE}&state=${STATE.slice(0, 30)}`)).toEqual([
      expect.stringContaining('state is 30 characters; this service makes them 43 long'),
    ]);
    expect(failures(`${BASE}?state=${STATE}&code=abc%2`)).toEqual([expect.stringContaining('code has a broken %-escape')]);
  });

  it('spots repeated parameters and uses the first', () => {
    const url = `${BASE}?code=${CODE}&state=${STATE}&state=other`;
    expect(failures(url)).toEqual(['state appears 2 times: the service refuses a callback with a repeated parameter']);
    expect(parseCallbackUrl(url).state).toBe(STATE);
  });

  it('reports Atlassian error answers with what they mean', () => {
    const parsed = parseCallbackUrl(
      `${BASE}?error=access_denied&error_description=User%20did%20not%20authorize%20the%20request&state=${STATE}`,
    );
    expect(parsed.error).toBe('access_denied');
    expect(parsed.errorDescription).toBe('User did not authorize the request');
    expect(parsed.findings).toEqual([
      expect.objectContaining({ status: 'warn', text: expect.stringContaining('the user pressed Cancel') }),
    ]);
    expect(failures(`${BASE}?error=invalid_scope&state=${STATE}`)).toEqual([expect.stringContaining('scope is not enabled')]);
  });

  it('notices missing parameters, line breaks, copied punctuation and a code in the fragment', () => {
    expect(failures(`${BASE}?state=${STATE}`)).toEqual([expect.stringContaining('No code and no error')]);
    expect(failures(`${BASE}?code=${CODE}`)).toEqual([expect.stringContaining('No state')]);
    const wrapped = parseCallbackUrl(`${BASE}?code=${CODE.slice(0, 10)}\n${CODE.slice(10)}&state=${STATE}`);
    expect(wrapped.code).toBe(CODE);
    expect(wrapped.findings.map((f) => f.status)).toEqual(['fail']);
    expect(parseCallbackUrl(`${BASE}?code=${CODE}&state=${STATE})`).findings).toEqual(
      expect.arrayContaining([expect.objectContaining({ status: 'warn', text: expect.stringContaining('ends with ")"') })]),
    );
    expect(failures(`${BASE}#code=${CODE}&state=${STATE}`)).toEqual(expect.arrayContaining([expect.stringContaining('comes after "#"')]));
  });

  it('accepts a bare query string, and refuses what is not a URL', () => {
    expect(parseCallbackUrl(`?code=${CODE}&state=${STATE}`)).toMatchObject({ location: null, code: CODE, state: STATE });
    expect(failures('not a callback')).toEqual([expect.stringContaining('This is not a URL')]);
  });

  it('never repeats the code or the state in what it found', () => {
    const urls = [
      `${BASE}?code=${CODE}&state=${STATE}`,
      `${BASE}?code=${CODE}+x&state=${STATE}%2525`,
      `${BASE}?code=${CODE}&code=${CODE}&state=${STATE.slice(0, 20)}`,
    ];
    for (const url of urls) {
      const text = JSON.stringify(parseCallbackUrl(url).findings);
      expect(text).not.toContain(CODE.slice(0, 12));
      expect(text).not.toContain(STATE.slice(0, 12));
    }
  });
});
