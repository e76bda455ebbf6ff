import type { Server } from 'node:http';
import type { Socket } from 'node:net';
import { errorBody } from '../common/error.filter.js';
import { apiHeaders, isApiPath, type TransportOptions } from './api-routes.js';

interface Refusal {
  readonly status: number;
  readonly reason: string;
  readonly text: string;
}

const HEADER_OVERFLOW: Refusal = {
  status: 431,
  reason: 'Request Header Fields Too Large',
  text:
    'The address or headers of this request are longer than this service accepts (16 KB). ' +
    'If this was a sign-in, start again from the app: sign-in codes are accepted up to 4096 characters.',
};
const TIMEOUT: Refusal = { status: 408, reason: 'Request Timeout', text: 'The request took too long to arrive.' };
const UNREADABLE: Refusal = { status: 400, reason: 'Bad Request', text: 'The request could not be read.' };

/** Node's codes for the requests it refuses before Express sees them; any other is unreadable. */
const REFUSALS: Readonly<Record<string, Refusal>> = {
  HPE_HEADER_OVERFLOW: HEADER_OVERFLOW,
  // Node 24 reports a request whose headers did not arrive within headersTimeout (or whole within requestTimeout) so.
  ERR_HTTP_REQUEST_TIMEOUT: TIMEOUT,
  HPE_REQUEST_TIMEOUT: TIMEOUT,
};

/** The start of a request as Node received it: `GET /v1/… HTTP/1.1`, or as much of it as arrived. */
const REQUEST_LINE = /^[A-Z]+ (\/[^\s?#]*)/;

/**
 * Node refuses a request it cannot parse, or that arrives too slowly, before Express sees it; this answers why instead
 * of closing with a bare status. Where the path is the API's, the answer is the API's: `{ error: { code, message } }`
 * with its headers. Node hands over only the last piece of the request it read, so the path is known when the request
 * line is in it (a request head sent at once usually is) and unknown after a timeout; an unknown path is answered as
 * the API answers, the one shape a program can read.
 */
export function explainRefusedRequests(server: Server, transport: TransportOptions): void {
  const headers = apiHeaders(transport)
    .map(([name, value]) => `${name}: ${value}\r\n`)
    .join('');
  server.on(
    'clientError',
    (error: NodeJS.ErrnoException & { rawPacket?: Buffer }, socket: Socket & { _httpMessage?: { headersSent: boolean } }) => {
      // As Node's own handler does: answer only when no response on this connection has started to go out.
      if (error.code === 'ECONNRESET' || !socket.writable || socket._httpMessage?.headersSent) {
        socket.destroy();
        return;
      }
      const refusal = REFUSALS[error.code ?? ''] ?? UNREADABLE;
      const path = error.rawPacket ? REQUEST_LINE.exec(error.rawPacket.toString('latin1', 0, 256))?.[1] : undefined;
      socket.end(path === undefined || isApiPath(path) ? apiAnswer(refusal, headers) : textAnswer(refusal));
    },
  );
}

function apiAnswer({ status, reason, text }: Refusal, headers: string): string {
  const body = JSON.stringify(errorBody('invalid_request', text));
  return (
    `HTTP/1.1 ${status} ${reason}\r\n${headers}Content-Type: application/json; charset=utf-8\r\n` +
    `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`
  );
}

function textAnswer({ status, reason, text }: Refusal): string {
  return (
    `HTTP/1.1 ${status} ${reason}\r\nContent-Type: text/plain; charset=utf-8\r\n` +
    `Content-Length: ${Buffer.byteLength(text)}\r\nConnection: close\r\n\r\n${text}`
  );
}
