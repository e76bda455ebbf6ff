/**
 * Why Atlassian refused an authorization code (`invalid_grant` "Invalid authorization code", or `invalid_request`
 * "authorization_code is invalid"), worked out from what the service knows about the sign-in. Pure, so the callback
 * and the `explain-callback` command give the same answer. Nothing here ever repeats the code itself.
 */

/** Atlassian's codes live about 10 minutes, "maybe less" (ATLASSIAN.md). */
export const CODE_LIFETIME_SECONDS = 600;
/** A code this young cannot have expired, whatever "maybe less" means. */
const SURELY_FRESH_SECONDS = 60;

export type RejectedCodeCause = 'code_reused' | 'code_expired' | 'redirect_uri_mismatch' | 'code_altered';
export type Verdict = 'likely' | 'possible' | 'unlikely' | 'ruled_out';

export interface RejectedCodeFacts {
  /** Atlassian's `error`: invalid_grant, or invalid_request for a code that is too old. */
  readonly atlassianError: string;
  readonly atlassianDescription?: string;
  /** The sign-in link (state) had been used before this callback, so its code had already been presented. */
  readonly stateUsedBefore: boolean;
  /** From the authorization request to the exchange: the code is at most this old. */
  readonly secondsSinceAuthorize: number;
  /** The redirect_uri sent to /authorize, as stored with the state. */
  readonly authorizeRedirectUri: string;
  /** The redirect_uri sent with the code. */
  readonly exchangeRedirectUri: string;
  /** The code exactly as the callback received it (after one URL decoding). */
  readonly code: string;
}

export interface CauseAssessment {
  readonly cause: RejectedCodeCause;
  readonly verdict: Verdict;
  readonly explanation: string;
}

export interface RejectedCodeDiagnosis {
  readonly summary: string;
  /** Most likely first. */
  readonly causes: readonly CauseAssessment[];
}

export interface CodeInspection {
  readonly length: number;
  readonly whitespace: boolean;
  /** `%2F`, `%3D`…: the code was URL-encoded once more than it was decoded. */
  readonly percentEscapes: boolean;
  /** Characters outside what URL-safe codes and base64 use. */
  readonly unusualCharacters: boolean;
}

const VERDICT_ORDER: Record<Verdict, number> = { likely: 0, possible: 1, unlikely: 2, ruled_out: 3 };

export function diagnoseRejectedCode(facts: RejectedCodeFacts): RejectedCodeDiagnosis {
  const causes = [codeReused(facts), codeExpired(facts), redirectUriMismatch(facts), codeAltered(facts)].sort(
    (a, b) => VERDICT_ORDER[a.verdict] - VERDICT_ORDER[b.verdict],
  );
  const answer = facts.atlassianDescription ? `${facts.atlassianError}: ${facts.atlassianDescription}` : facts.atlassianError;
  return { summary: `Atlassian refused the sign-in code (${answer}).`, causes };
}

const PERCENT_ESCAPE = /%[0-9A-Fa-f]{2}/;

/** A %-escape in a value that was already URL-decoded once: it was encoded once more than it was decoded. */
export function hasPercentEscape(value: string): boolean {
  return PERCENT_ESCAPE.test(value);
}

export function inspectCode(code: string): CodeInspection {
  return {
    length: code.length,
    whitespace: /\s/.test(code),
    percentEscapes: hasPercentEscape(code),
    unusualCharacters: /[^A-Za-z0-9._~+/=-]/.test(code.replace(/\s|%[0-9A-Fa-f]{2}/g, '')),
  };
}

function codeReused(facts: RejectedCodeFacts): CauseAssessment {
  if (facts.stateUsedBefore) {
    return {
      cause: 'code_reused',
      verdict: 'likely',
      explanation:
        'This sign-in link had already been used, so its code had been sent to Atlassian before; a code works only once (a double click, a browser retry or a link checker opening it first).',
    };
  }
  return {
    cause: 'code_reused',
    verdict: 'unlikely',
    explanation:
      'Ruled out for this service: this was the first use of the sign-in link, and the service exchanges each code at most once. Only something else holding the code (a proxy retrying the request, or another deployment sharing this callback URL) could have used it first.',
  };
}

function codeExpired(facts: RejectedCodeFacts): CauseAssessment {
  const age = describeDuration(facts.secondsSinceAuthorize);
  if (facts.atlassianError === 'invalid_request') {
    return {
      cause: 'code_expired',
      verdict: 'likely',
      explanation: `Atlassian answers invalid_request for a code that is too old. The sign-in started ${age} before the exchange; codes live about 10 minutes, maybe less.`,
    };
  }
  if (facts.secondsSinceAuthorize >= CODE_LIFETIME_SECONDS) {
    return {
      cause: 'code_expired',
      verdict: 'likely',
      explanation: `The sign-in started ${age} before the exchange; codes live about 10 minutes.`,
    };
  }
  if (facts.secondsSinceAuthorize <= SURELY_FRESH_SECONDS) {
    return {
      cause: 'code_expired',
      verdict: 'ruled_out',
      explanation: `Ruled out: the sign-in started only ${age} before the exchange, and codes live about 10 minutes.`,
    };
  }
  return {
    cause: 'code_expired',
    verdict: 'possible',
    explanation: `The sign-in started ${age} before the exchange; codes live about 10 minutes, "maybe less".`,
  };
}

function redirectUriMismatch(facts: RejectedCodeFacts): CauseAssessment {
  if (facts.authorizeRedirectUri !== facts.exchangeRedirectUri) {
    return {
      cause: 'redirect_uri_mismatch',
      verdict: 'likely',
      explanation: `The redirect_uri sent to /authorize (${facts.authorizeRedirectUri}) differs from the one sent with the code (${facts.exchangeRedirectUri}): the configured callback URL changed in between. Both must be identical.`,
    };
  }
  return {
    cause: 'redirect_uri_mismatch',
    verdict: 'possible',
    explanation: `The service sent the same redirect_uri to /authorize and with the code: ${facts.exchangeRedirectUri}. It must equal the Callback URL registered for the app in the Atlassian developer console byte for byte, trailing slash included.`,
  };
}

function codeAltered(facts: RejectedCodeFacts): CauseAssessment {
  const code = inspectCode(facts.code);
  const received = `The code arrived as ${code.length} characters`;
  if (code.whitespace) {
    return {
      cause: 'code_altered',
      verdict: 'likely',
      explanation: `${received} with spaces or line breaks in it: a "+" decoded as a space, or a link wrapped or cut by a mail or chat program.`,
    };
  }
  if (code.percentEscapes) {
    return {
      cause: 'code_altered',
      verdict: 'likely',
      explanation: `${received} with %-escapes still in it: something between Atlassian and this service URL-encoded the callback address twice.`,
    };
  }
  if (code.unusualCharacters) {
    return {
      cause: 'code_altered',
      verdict: 'possible',
      explanation: `${received}, some of them unusual for a code: it may have been changed on its way here.`,
    };
  }
  return {
    cause: 'code_altered',
    verdict: 'unlikely',
    explanation: `${received}, all URL-safe, with no spaces or %-escapes: no sign of double encoding. A code cut short on its way cannot be ruled out from here.`,
  };
}

function describeDuration(seconds: number): string {
  const whole = Math.max(0, Math.round(seconds));
  if (whole < 120) return `${whole} second${whole === 1 ? '' : 's'}`;
  return `${Math.round(whole / 60)} minutes`;
}
