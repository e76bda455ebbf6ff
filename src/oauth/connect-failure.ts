import type { RejectedCodeDiagnosis } from './callback-diagnosis.js';

/**
 * Why connecting a user failed. The code is what CONNECT_FAILURE_URL receives as `?error=<code>` (a contract with
 * the SaaS backend) and what oauth_states.outcome records; the page shows the title, the detail and the advice.
 */
export const CONNECT_FAILURES = {
  invalid_request: {
    status: 400,
    title: 'This sign-in address is malformed',
    advice: 'Go back to the app and start connecting again.',
  },
  ticket_invalid: {
    status: 400,
    title: 'This connect link is not valid',
    advice: 'Go back to the app and start connecting again; it will give you a new link.',
  },
  ticket_used: {
    status: 400,
    title: 'This connect link was already used',
    advice: 'Each connect link works once. Go back to the app and start connecting again.',
  },
  ticket_expired: {
    status: 400,
    title: 'This connect link has expired',
    advice: 'Connect links work for 10 minutes. Go back to the app and start connecting again.',
  },
  state_missing: {
    status: 400,
    title: 'This page expects an answer from Atlassian',
    advice: 'Open the connect link from the app instead of this address.',
  },
  state_invalid: {
    status: 400,
    title: 'This sign-in link is not recognised',
    advice: 'Go back to the app and start connecting again.',
  },
  state_expired: {
    status: 400,
    title: 'This sign-in took too long',
    advice: 'Signing in must finish within 10 minutes of opening the connect link. Go back to the app and start again.',
  },
  state_used: {
    status: 409,
    title: 'This sign-in link was already used',
    advice:
      'It may have been opened twice (a double click, the back button, or a link checker). Check the app: the first attempt may have connected you; if not, start again.',
  },
  browser_mismatch: {
    status: 400,
    title: 'This sign-in was started in another browser',
    advice: 'Finish signing in in the browser where you opened the connect link, with cookies enabled, or start again here.',
  },
  access_denied: {
    status: 403,
    title: 'You declined access',
    advice: 'Nothing was connected. To try again, go back to the app and connect again; this time choose Accept on the Atlassian page.',
  },
  authorization_failed: {
    status: 400,
    title: 'Atlassian did not authorize the request',
    advice: 'Start again from the app. If it keeps happening, tell the operator of this service what the page says.',
  },
  code_missing: {
    status: 400,
    title: 'Atlassian sent no sign-in code',
    advice: 'Start again from the app.',
  },
  invalid_grant: {
    status: 400,
    title: 'Atlassian did not accept the sign-in',
    advice:
      'Start again from the app; a new sign-in gets a new code. If it keeps happening, give the operator of this service the causes above.',
  },
  offline_access_missing: {
    status: 502,
    title: 'Atlassian did not grant offline access',
    advice:
      'Atlassian answered without a refresh token, so the connection could not stay alive. The operator must make sure the app requests offline_access; then start again.',
  },
  profile_unavailable: {
    status: 502,
    title: 'Atlassian did not share your account',
    advice: 'The app needs the read:me scope and the User Identity API. Tell the operator of this service.',
  },
  configuration_error: {
    status: 503,
    title: 'This service is not set up correctly',
    advice:
      'Atlassian refused this service’s app credentials. Tell the operator of this service; trying again will not help until it is fixed.',
  },
  atlassian_unavailable: {
    status: 503,
    title: 'Atlassian could not be reached',
    advice: 'Nothing was connected. Try again in a few minutes from the app.',
  },
  atlassian_error: {
    status: 502,
    title: 'Atlassian answered something unexpected',
    advice: 'Nothing was connected. Try again in a few minutes; if it keeps happening, tell the operator of this service.',
  },
  internal_error: {
    status: 500,
    title: 'Something went wrong on our side',
    advice: 'Nothing was connected. Try again in a few minutes; if it keeps happening, give the operator the reference below.',
  },
} as const satisfies Record<string, { status: number; title: string; advice: string }>;

export type ConnectFailureCode = keyof typeof CONNECT_FAILURES;

/** Callbacks that end before any code is sent to Atlassian: it answered with an error, or with nothing. */
export const ENDED_WITHOUT_CODE: readonly ConnectFailureCode[] = ['access_denied', 'authorization_failed', 'code_missing'];

/** A refused start or callback. Its detail is shown to the user: it never holds a token, code, state or ticket. */
export class ConnectFailure extends Error {
  constructor(
    readonly code: ConnectFailureCode,
    readonly detail: string,
    /** For invalid_grant: which causes are likely and which the service ruled out. */
    readonly diagnosis?: RejectedCodeDiagnosis,
    /** For state_used, when the browser that finished the sign-in opens its callback again (a reload): how it ended. */
    readonly finishedWith?: 'connected' | ConnectFailureCode,
  ) {
    super(detail);
    this.name = 'ConnectFailure';
  }

  get status(): number {
    return CONNECT_FAILURES[this.code].status;
  }
}
