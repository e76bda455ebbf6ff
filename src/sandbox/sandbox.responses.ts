import type { Readable } from 'node:stream';

/** A body sent as it is read, with back-pressure: the sandbox's large attachments. */
export class SandboxStream {
  constructor(
    readonly contentType: string,
    readonly length: number,
    readonly open: () => Readable,
  ) {}
}

/** What an endpoint answers, kept free of Express so the rules can be tested without HTTP. */
export interface SandboxResponse {
  status: number;
  body: unknown;
  headers?: Record<string, string>;
}

export function ok(body: unknown): SandboxResponse {
  return { status: 200, body };
}

/** The shape auth.atlassian.com uses for token-endpoint errors. */
export function oauthError(status: number, error: string, description: string): SandboxResponse {
  return { status, body: { error, error_description: description } };
}

/** The shape api.atlassian.com uses for API errors. */
export function apiError(status: number, message: string): SandboxResponse {
  return { status, body: { code: status, message } };
}
