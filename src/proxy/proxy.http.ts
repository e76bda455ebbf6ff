import type { Response } from 'express';
import { isAnsweredHeader } from './proxy-headers.js';
import type { ProxiedAnswer } from './proxy.service.js';

/**
 * Sends Atlassian's answer on: its status, its headers in place of this service's own of the same names (the API's
 * X-RateLimit-* counts this service's limit; on a proxied answer those names are Atlassian's), and its body with
 * back-pressure: read from Atlassian only as fast as the caller reads. Settles when the answer is sent or cut off.
 *
 * `pipe` with both ends' failures handled here rather than `stream.pipeline`, which aborts an AbortController when it
 * finishes: a DOMException with its stack for every answer, a few percent of the proxy's CPU in a profile.
 */
export function sendProxied(res: Response, answer: ProxiedAnswer): Promise<void> {
  for (const name of res.getHeaderNames()) if (isAnsweredHeader(name)) res.removeHeader(name);
  res.status(answer.status);
  for (const [name, value] of answer.headers) res.setHeader(name, value);
  const { body } = answer;
  return new Promise((resolve) => {
    // Atlassian broke off mid-body: the caller's connection ends early, which is how it learns the answer is cut short.
    body.once('error', () => res.destroy());
    // Sent, or the caller went away: Atlassian's side is let go of, unread or not.
    res.once('close', () => {
      if (!body.readableEnded) body.destroy();
      resolve();
    });
    body.pipe(res);
  });
}
