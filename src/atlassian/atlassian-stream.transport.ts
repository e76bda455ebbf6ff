import http, { type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import https from 'node:https';
import { pipeline, type Readable, type Transform } from 'node:stream';
import { createBrotliDecompress, createGunzip, createInflate } from 'node:zlib';
import { AtlassianError } from './atlassian.errors.js';

export interface StreamTransportOptions {
  /** How long opening a connection may take (a reused keep-alive connection is already open). */
  readonly connectTimeoutMs: number;
  /** How long the answer's status and headers may take to arrive, from the start. The body is not timed here. */
  readonly answerTimeoutMs: number;
}

export interface StreamRequest {
  readonly url: URL;
  /** The path and query as they are to be sent, byte for byte (not re-encoded by a URL parser). */
  readonly pathAndQuery: string;
  readonly method: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly body?: Buffer;
}

/** An answer whose body has not been read: the caller streams it on, or drains or destroys it. */
export interface StreamedAnswer {
  readonly status: number;
  readonly headers: Headers;
  /** Decompressed when Atlassian compressed it (then without Content-Encoding and Content-Length in `headers`). */
  readonly body: Readable;
}

const DECODERS: Record<string, () => Transform> = {
  gzip: createGunzip,
  'x-gzip': createGunzip,
  deflate: createInflate,
  br: createBrotliDecompress,
};

/** What the transport asks Atlassian for: the encodings it can decode. */
export const ACCEPTED_ENCODINGS = Object.keys(DECODERS).join(', ');

/**
 * HTTP to Atlassian with the answer's body left as a stream, for the proxy: `node:http` over keep-alive agents, so a
 * body is read only as fast as the caller reads it on (back-pressure end to end). A connection that cannot be opened
 * in time, or an answer whose head does not arrive in time, is a `timeout`; any other failure before the head is
 * `network`. A body that stalls is not timed out here: a slow reader pauses it on purpose, and the reader going away
 * ends it.
 */
export class StreamTransport {
  private readonly agents = {
    'http:': new http.Agent({ keepAlive: true, scheduling: 'lifo' }),
    'https:': new https.Agent({ keepAlive: true, scheduling: 'lifo' }),
  };

  constructor(private readonly options: StreamTransportOptions) {}

  send(request: StreamRequest): Promise<StreamedAnswer> {
    const { url } = request;
    const secure = url.protocol === 'https:';
    return new Promise((resolve, reject) => {
      let settled = false;
      const settle = (outcome: () => void) => {
        if (settled) return;
        settled = true;
        clearTimeout(answerTimer);
        outcome();
      };
      const outgoing = (secure ? https : http).request({
        protocol: url.protocol,
        hostname: url.hostname,
        port: url.port,
        path: request.pathAndQuery,
        method: request.method,
        headers: request.headers,
        agent: secure ? this.agents['https:'] : this.agents['http:'],
      });
      const giveUp = (message: string) => {
        settle(() => reject(new AtlassianError('timeout', message)));
        outgoing.destroy();
      };
      const answerTimer = setTimeout(
        () => giveUp(`Atlassian did not answer within ${this.options.answerTimeoutMs} ms`),
        this.options.answerTimeoutMs,
      );
      outgoing.once('socket', (socket) => {
        if (!socket.connecting) return;
        const connectTimer = setTimeout(
          () => giveUp(`no connection to Atlassian within ${this.options.connectTimeoutMs} ms`),
          this.options.connectTimeoutMs,
        );
        socket.once('connect', () => clearTimeout(connectTimer));
        socket.once('close', () => clearTimeout(connectTimer));
      });
      outgoing.once('response', (response) => {
        if (settled) response.destroy();
        else settle(() => resolve(answerOf(response)));
      });
      outgoing.on('error', (error: NodeJS.ErrnoException) => {
        settle(() => reject(new AtlassianError('network', `Atlassian could not be reached (${error.code ?? error.name})`)));
      });
      outgoing.end(request.body);
    });
  }

  /** Closes the idle keep-alive connections. */
  close(): void {
    this.agents['http:'].destroy();
    this.agents['https:'].destroy();
  }
}

function answerOf(response: IncomingMessage): StreamedAnswer {
  const decoder = DECODERS[(response.headers['content-encoding'] ?? '').trim().toLowerCase()];
  const headers = headersOf(response.headers);
  if (!decoder) return { status: response.statusCode!, headers, body: response };
  headers.delete('content-encoding');
  headers.delete('content-length');
  // An error on either side destroys both: a broken upstream ends the decoded body with it.
  const body = pipeline(response, decoder(), () => undefined);
  return { status: response.statusCode!, headers, body };
}

function headersOf(incoming: IncomingHttpHeaders): Headers {
  const headers = new Headers();
  for (const [name, value] of Object.entries(incoming)) {
    if (value === undefined) continue;
    for (const one of Array.isArray(value) ? value : [value]) headers.append(name, one);
  }
  return headers;
}
