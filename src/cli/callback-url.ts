import { hasPercentEscape, inspectCode as inspectCodeCharacters } from '../oauth/callback-diagnosis.js';
import { SECRET_LENGTH as STATE_LENGTH } from '../oauth/secrets.js';
import type { Check } from './cli-output.js';

const URL_SAFE = /^[A-Za-z0-9_-]+$/;
const COPIED_PUNCTUATION = /[)"'>.,;\]]$/;

/** Another value a damaged state may have had before the damage, worth looking up too. */
export interface StateCandidate {
  readonly value: string;
  /** What was undone to get it; empty for the value as received. */
  readonly undoing: string;
}

export interface ParsedCallback {
  /** scheme://host/path, as pasted; null when only a query string was given. */
  readonly location: string | null;
  readonly code?: string;
  readonly state?: string;
  readonly error?: string;
  readonly errorDescription?: string;
  /** Names of parameters that are none of the above. */
  readonly otherParameters: readonly string[];
  /** What is wrong (or noteworthy) in the URL itself. Never contains a code or state. */
  readonly findings: readonly Check[];
  readonly stateCandidates: readonly StateCandidate[];
}

interface RawParameter {
  readonly name: string;
  readonly raw: string;
  /** Decoded the way the service's query parser decodes ('+' is a space); null when the escapes are broken. */
  readonly value: string | null;
}

/**
 * Reads a callback URL the way a person pasted it (from the browser's address bar or a log) and says what may have
 * been done to it on the way: encoded twice, '+' turned into spaces, cut short, wrapped, parameters repeated.
 */
export function parseCallbackUrl(pasted: string): ParsedCallback {
  const findings: Check[] = [];
  let input = pasted.trim();
  if (/\s/.test(input)) {
    findings.push({
      status: 'fail',
      text: 'The URL contains spaces or line breaks: it was wrapped or pasted in pieces',
      fix: 'Copy it again in one piece from the browser address bar; the analysis below ignores the breaks.',
    });
    input = input.replace(/\s+/g, '');
  }

  // A whole URL encoded again, as it appears inside another link's query string.
  if (/^https?%3A%2F%2F/i.test(input)) {
    const decoded = decodeWhole(input);
    if (decoded !== null) {
      findings.push({
        status: 'fail',
        text: 'The whole URL was URL-encoded ("://" arrived as %3A%2F%2F): it was copied from inside another link',
        fix: 'Copy the address from the browser address bar after Atlassian sent it back; the analysis below decodes it once.',
      });
      input = decoded;
    }
  }

  // A callback URL encoded as a whole ("?" as %3F) reaches the service with no query string at all.
  if (!input.includes('?') && /%3F/i.test(input)) {
    const decoded = decodeQueryPart(input);
    if (decoded?.includes('?')) {
      findings.push({
        status: 'fail',
        text: 'The whole query string was URL-encoded ("?" arrived as %3F): the service sees no code and no state',
        fix: 'Whatever builds or forwards the callback URL encodes it once too often; pass it through as Atlassian sent it.',
      });
      input = decoded;
    }
  }

  const split = splitUrl(input);
  const { location, fragment } = split;
  let query = split.query;
  // The query string encoded as a whole after its "?": "=" and "&" arrive as %3D and %26, so one parameter holds the rest.
  const decodedQuery = decodeWhole(query);
  if (decodedQuery !== null && callbackKeys(decodedQuery) > callbackKeys(query)) {
    findings.push({
      status: 'fail',
      text: 'The query string was URL-encoded as a whole ("=" and "&" arrived as %3D and %26): the service cannot read the code and the state from it',
      fix: 'Whatever builds or forwards the callback URL encodes it once too often; pass it through as Atlassian sent it.',
    });
    query = decodedQuery;
  }
  if (location === undefined) {
    return {
      location: null,
      otherParameters: [],
      findings: [{ status: 'fail', text: 'This is not a URL: paste the whole address the browser was sent to, https:// included' }],
      stateCandidates: [],
    };
  }
  if (fragment !== null && /(^|&)(code|state)=/.test(fragment)) {
    findings.push({
      status: 'fail',
      text: 'code or state comes after "#": a browser never sends that part to the server',
      fix: 'Something rewrote the redirect (a single-page app router?); the callback must receive them in the query string.',
    });
  }

  const parameters = parseQuery(query);
  const byName = new Map<string, RawParameter[]>();
  for (const parameter of parameters) byName.set(parameter.name, [...(byName.get(parameter.name) ?? []), parameter]);
  for (const [name, all] of byName) {
    if (all.length > 1) {
      findings.push({
        status: 'fail',
        text: `${name} appears ${all.length} times: the service refuses a callback with a repeated parameter`,
        fix: 'Something appended its own copy (a redirect that keeps the old query string?).',
      });
    }
  }
  for (const parameter of parameters.filter((p) => p.value === null)) {
    findings.push({
      status: 'fail',
      text: `${parameter.name} has a broken %-escape: the URL was cut short or mangled`,
      fix: 'Copy the URL again, whole; a chat or mail program may have cut it.',
    });
  }

  const first = (name: string): RawParameter | undefined => byName.get(name)?.[0];
  const code = first('code');
  const state = first('state');
  const error = first('error');
  const errorDescription = first('error_description');

  if (error) findings.push(atlassianError(error.value ?? error.raw, errorDescription?.value ?? undefined));
  else if (!code)
    findings.push({ status: 'fail', text: 'No code and no error: this is not what Atlassian sends back, or it was cut before them' });
  if (code) findings.push(...inspectValue('code', code), ...inspectCode(code));
  if (state) findings.push(...inspectValue('state', state), ...inspectState(state));
  else if (code && !error && parameters[parameters.length - 1] === code) {
    // Atlassian sends the state after the code: a URL that ends in the code lost the rest of itself.
    findings.push({
      status: 'fail',
      text: 'No state, and the URL ends in the code: it was cut short there (Atlassian sends the state after the code), so the code is probably incomplete too',
      fix: 'Copy the URL again, whole; a chat or mail program may have cut it.',
    });
  } else findings.push({ status: 'fail', text: 'No state: the service cannot tell which sign-in this belongs to' });
  if (code && state && findings.every((f) => f.status === 'ok')) {
    findings.push({ status: 'ok', text: 'code and state are present once each, with no sign of double encoding, spaces or truncation' });
  }

  const known = new Set(['code', 'state', 'error', 'error_description']);
  return {
    location,
    code: code?.value ?? undefined,
    state: state?.value ?? undefined,
    error: error?.value ?? undefined,
    errorDescription: errorDescription?.value ?? undefined,
    otherParameters: [...byName.keys()].filter((name) => !known.has(name)),
    findings,
    stateCandidates: state ? stateCandidates(state) : [],
  };
}

function splitUrl(input: string): { location?: string | null; query: string; fragment: string | null } {
  const hash = input.indexOf('#');
  const beforeHash = hash >= 0 ? input.slice(0, hash) : input;
  const fragment = hash >= 0 ? input.slice(hash + 1) : null;
  const mark = beforeHash.indexOf('?');
  const base = mark >= 0 ? beforeHash.slice(0, mark) : beforeHash;
  const query = mark >= 0 ? beforeHash.slice(mark + 1) : '';
  if (base === '' && mark === 0) return { location: null, query, fragment };
  if (!/^https?:\/\/[^/]/i.test(base)) return { query, fragment };
  return { location: base, query, fragment };
}

function parseQuery(query: string): RawParameter[] {
  return query
    .split('&')
    .filter((pair) => pair.length > 0)
    .map((pair) => {
      const equals = pair.indexOf('=');
      const rawName = equals >= 0 ? pair.slice(0, equals) : pair;
      const raw = equals >= 0 ? pair.slice(equals + 1) : '';
      return { name: decodeQueryPart(rawName) ?? rawName, raw, value: decodeQueryPart(raw) };
    });
}

/** How many of the parameters a callback carries appear as parameters (not inside another one's value). */
function callbackKeys(query: string): number {
  return (query.match(/(^|&)(code|state|error)=/g) ?? []).length;
}

/** Decoded once as a whole; null when its escapes are broken. */
function decodeWhole(raw: string): string | null {
  try {
    return decodeURIComponent(raw);
  } catch {
    return null;
  }
}

function decodeQueryPart(raw: string): string | null {
  try {
    return decodeURIComponent(raw.replace(/\+/g, ' '));
  } catch {
    return null;
  }
}

/** Damage any parameter can suffer on its way; `code` and `state` never legitimately show any of it. */
function inspectValue(name: string, parameter: RawParameter): Check[] {
  const findings: Check[] = [];
  const { raw, value } = parameter;
  if (value === '') {
    findings.push({ status: 'fail', text: `${name} is empty` });
    return findings;
  }
  if (/%25/i.test(raw) || (value !== null && hasPercentEscape(value))) {
    findings.push({
      status: 'fail',
      text: `${name} is URL-encoded twice ("%25" is an encoded "%"): the service receives %-sequences instead of the characters`,
      fix: 'A proxy, a link rewriter or a redirect encoded the callback URL again; pass the query string through untouched.',
    });
  }
  if (raw.includes('+') || /%20/i.test(raw) || (value !== null && /\s/.test(value))) {
    findings.push({
      status: 'fail',
      text: `${name} contains "+" or a space: in a query string "+" means a space, so a "+" that was not encoded arrives as a space`,
      fix: 'Whatever built or rewrote this URL must encode "+" as %2B.',
    });
  }
  if (COPIED_PUNCTUATION.test(raw)) {
    findings.push({
      status: 'warn',
      text: `${name} ends with "${raw.slice(-1)}": was the URL copied together with the punctuation around it?`,
    });
  }
  return findings;
}

/** What the rejected-code diagnosis looks at, so the command and the callback page judge a code alike. */
function inspectCode(code: RawParameter): Check[] {
  if (code.value === null || code.value === '') return [];
  const inspection = inspectCodeCharacters(code.value);
  // Escapes and spaces are reported above, as damage any parameter can suffer.
  if (inspection.percentEscapes || inspection.whitespace || !inspection.unusualCharacters) return [];
  return [{ status: 'warn', text: 'code holds characters unusual for an Atlassian code: it may have been altered on the way' }];
}

function inspectState(state: RawParameter): Check[] {
  const value = state.value;
  if (value === null || value === '' || !URL_SAFE.test(value)) {
    return value && !hasPercentEscape(value) && !/\s/.test(value)
      ? [
          {
            status: 'fail',
            text: `state holds characters this service never puts in a state (it makes ${STATE_LENGTH} URL-safe characters)`,
          },
        ]
      : [];
  }
  if (value.length < STATE_LENGTH) {
    return [
      {
        status: 'fail',
        text: `state is ${value.length} characters; this service makes them ${STATE_LENGTH} long: the URL was cut short`,
        fix: 'Copy the URL again, whole; a chat or mail program may have cut it.',
      },
    ];
  }
  if (value.length > STATE_LENGTH) {
    return [
      { status: 'fail', text: `state is ${value.length} characters; this service makes them ${STATE_LENGTH} long: something was appended` },
    ];
  }
  return [];
}

const ATLASSIAN_ERRORS: Record<string, string> = {
  access_denied: 'the user pressed Cancel on the consent page (or may not grant this app access); nothing is wrong with the setup',
  unauthorized_client: 'Atlassian refused the app for this request: check the client id and that the callback URL is registered',
  invalid_scope:
    'a requested scope is not enabled for the app: add it under Permissions in the developer console, or remove it from ATLASSIAN_SCOPES',
  server_error: 'Atlassian failed; starting again usually works',
  temporarily_unavailable: 'Atlassian is briefly unavailable; starting again usually works',
};

function atlassianError(error: string, description: string | undefined): Check {
  const said = description ? `error=${error} ("${description}")` : `error=${error}`;
  const meaning = ATLASSIAN_ERRORS[error];
  return {
    status: error === 'access_denied' ? 'warn' : 'fail',
    text: `Atlassian answered ${said}${meaning ? `: ${meaning}` : ''}`,
  };
}

/** The state as received, then what it may have been before each kind of damage, for the lookup. */
function stateCandidates(state: RawParameter): StateCandidate[] {
  const candidates: StateCandidate[] = [];
  const add = (value: string | null, undoing: string) => {
    if (value && !candidates.some((c) => c.value === value)) candidates.push({ value, undoing });
  };
  add(state.value, '');
  add(state.value && decodeQueryPart(state.value), 'the second URL-encoding');
  add(state.value?.replace(/ /g, '+') ?? null, 'the "+" read as a space');
  return candidates;
}
