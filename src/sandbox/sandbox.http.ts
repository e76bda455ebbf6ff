import { pipeline } from 'node:stream/promises';
import type { Response } from 'express';
import type { Checked } from './sandbox.params.js';
import { oauthError, SandboxStream, type SandboxResponse } from './sandbox.responses.js';

/** Token answers must not be cached (RFC 6749 §5.1); the other answers gain nothing from caching either. */
export function sendAnswer(res: Response, answer: SandboxResponse): void {
  res.status(answer.status).set({ 'Cache-Control': 'no-store', Pragma: 'no-cache', ...answer.headers });
  if (answer.body instanceof SandboxStream) {
    res.set({ 'Content-Type': answer.body.contentType, 'Content-Length': String(answer.body.length) });
    // A client that goes away mid-body ends the stream; there is nobody left to tell.
    pipeline(answer.body.open(), res).catch(() => undefined);
  } else if (answer.body === undefined) {
    res.end();
  } else {
    res.json(answer.body);
  }
}

/** A control request's answer, or 400 when its body did not parse. */
export function sendChecked<T>(res: Response, input: Checked<T>, act: (value: T) => SandboxResponse): void {
  sendAnswer(res, input.ok ? act(input.value) : oauthError(400, 'invalid_request', input.message));
}

/**
 * Pages carry `state` in their URL and form: never cached, never sent on in a Referer. The consent form
 * posts to the sandbox, which then redirects to the app, so the app's origin must be an allowed form target.
 */
export function sendPage(res: Response, status: number, html: string, formTargets: string[] = []): void {
  const formAction = formTargets.length > 0 ? `'self' ${formTargets.join(' ')}` : "'none'";
  res
    .status(status)
    .set({
      'Cache-Control': 'no-store',
      'Content-Security-Policy': `default-src 'none'; style-src 'unsafe-inline'; form-action ${formAction}; frame-ancestors 'none'; base-uri 'none'`,
      'Referrer-Policy': 'no-referrer',
      'X-Content-Type-Options': 'nosniff',
    })
    .type('html')
    .send(html);
}

/** Sets Location as built, so the redirect_uri part stays byte-identical to the registered one. */
export function sendRedirect(res: Response, location: string): void {
  res.status(302).set({ 'Cache-Control': 'no-store', 'Referrer-Policy': 'no-referrer', Location: location }).end();
}
