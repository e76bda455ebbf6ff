import { createServer, type Server } from 'node:http';
import { connect } from 'node:net';
import { afterEach, describe, expect, it } from '@jest/globals';
import { explainRefusedRequests } from './refused-requests.js';

/** Writes `parts` as they are, the next one after `pauseMs`, and answers all that came back. */
function talk(server: Server, parts: string[], pauseMs = 0): Promise<string> {
  const { port } = server.address() as { port: number };
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => {
      void (async () => {
        for (const part of parts) {
          if (socket.destroyed) return;
          socket.write(part);
          await new Promise((wait) => setTimeout(wait, pauseMs));
        }
      })();
    });
    let answer = '';
    socket.on('data', (chunk: Buffer) => (answer += chunk.toString('utf8')));
    socket.on('error', reject);
    socket.on('close', () => resolve(answer));
  });
}

function bodyOf(answer: string): unknown {
  return JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4));
}

describe('explainRefusedRequests', () => {
  let server: Server;

  async function listen(options: { headersTimeout?: number } = {}): Promise<void> {
    // A short checking interval, so that a header timeout is noticed within the test.
    server = createServer({ ...options, requestTimeout: options.headersTimeout ?? 0, connectionsCheckingInterval: 20 }, (_req, res) =>
      res.end('ok'),
    );
    explainRefusedRequests(server, { https: false });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  }

  afterEach(async () => {
    await new Promise((resolve) => server.close(resolve));
  });

  it("answers a request whose headers do not arrive in time with 408 in the API's shape (ERR_HTTP_REQUEST_TIMEOUT)", async () => {
    await listen({ headersTimeout: 100 });
    const answer = await talk(server, ['GET /v1/connections HTTP/1.1\r\nHost: x\r\n', 'X-Slow: 1\r\n'], 400);
    expect(answer).toMatch(/^HTTP\/1\.1 408 Request Timeout\r\n/);
    expect(answer).toContain('Cache-Control: no-store\r\n');
    expect(bodyOf(answer)).toEqual({ error: { code: 'invalid_request', message: 'The request took too long to arrive.' } });
  });

  it("answers headers over the limit with 431: in the API's shape for an API path, in text for another", async () => {
    await listen();
    const padding = `X-Padding: ${'p'.repeat(20_000)}\r\n\r\n`;
    const api = await talk(server, [`GET /V1/users/x/connection HTTP/1.1\r\nHost: x\r\n${padding}`]);
    expect(api).toMatch(/^HTTP\/1\.1 431 /);
    expect(bodyOf(api)).toEqual({ error: { code: 'invalid_request', message: expect.stringContaining('16 KB') } });
    expect(api).not.toContain('Strict-Transport-Security');

    const page = await talk(server, [`GET /auth/atlassian/callback?code=x HTTP/1.1\r\nHost: x\r\n${padding}`]);
    expect(page).toMatch(/^HTTP\/1\.1 431 /);
    expect(page).toContain('Content-Type: text/plain; charset=utf-8');
    expect(page).toContain('sign-in codes are accepted up to 4096 characters');
  });

  it('answers a request it cannot read with 400', async () => {
    await listen();
    const answer = await talk(server, ['GET /v1/connections HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n']);
    expect(answer).toMatch(/^HTTP\/1\.1 400 Bad Request\r\n/);
    expect(bodyOf(answer)).toEqual({ error: { code: 'invalid_request', message: 'The request could not be read.' } });
  });
});
