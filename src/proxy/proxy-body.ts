import type { IncomingMessage } from 'node:http';
import { DomainError } from '../common/errors.js';

function bodyTooLarge(maxBytes: number): DomainError {
  return new DomainError(
    'body_too_large',
    `The request body is larger than the ${maxBytes} bytes the proxy forwards (PROXY_MAX_BODY_BYTES).`,
  );
}

/** Refuses a body whose declared length is over the limit, before anything else is done for the request. */
export function checkDeclaredLength(request: IncomingMessage, maxBytes: number): void {
  const declared = request.headers['content-length'];
  if (declared !== undefined && Number(declared) > maxBytes) throw bodyTooLarge(maxBytes);
}

/**
 * The request's body, read whole (undefined when the request has none), at most `maxBytes` counted as it arrives
 * (a declared length over it is refused before, by `checkDeclaredLength`). Held in memory rather than
 * streamed on because nothing may reach Atlassian before the body is known to fit, and a 401 is retried with the same
 * body. Past the limit the rest is read away unseen, so that the 413 still reaches a caller that is sending.
 */
export function readBody(request: IncomingMessage, maxBytes: number): Promise<Buffer | undefined> {
  if (request.headers['content-length'] === undefined && request.headers['transfer-encoding'] === undefined) {
    return Promise.resolve(undefined);
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const stop = () => {
      request.off('data', onData);
      request.off('end', onEnd);
      request.off('close', onClose);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size <= maxBytes) {
        chunks.push(chunk);
        return;
      }
      stop();
      request.resume();
      reject(bodyTooLarge(maxBytes));
    };
    const onEnd = () => {
      stop();
      resolve(Buffer.concat(chunks, size));
    };
    const onClose = () => {
      stop();
      reject(new Error('The caller closed the connection before its request body was complete'));
    };
    request.on('data', onData);
    request.on('end', onEnd);
    request.on('close', onClose);
  });
}
