import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';

export interface ReceivedWebhook {
  /** The body exactly as it came over the wire. */
  readonly raw: Buffer;
  readonly headers: IncomingHttpHeaders;
}

/** What the receiver does with the next request: answer with a status, or never answer. */
export type ReceiverBehaviour = number | 'hang';

/** A webhook receiver on 127.0.0.1:0 that records every request and answers as the test says. */
export class WebhookReceiver {
  readonly received: ReceivedWebhook[] = [];
  behaviour: ReceiverBehaviour = 200;
  private server?: Server;
  private waiters: { count: number; resolve: () => void }[] = [];

  async listen(): Promise<string> {
    this.server = createServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on('data', (chunk: Buffer) => chunks.push(chunk));
      request.on('end', () => {
        this.received.push({ raw: Buffer.concat(chunks), headers: request.headers });
        this.waiters = this.waiters.filter((w) => (this.received.length >= w.count ? (w.resolve(), false) : true));
        if (this.behaviour !== 'hang') response.writeHead(this.behaviour).end();
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(this.server.address() as { port: number }).port}/hooks`;
  }

  /** Resolves once `count` requests have arrived in total. */
  waitFor(count: number): Promise<void> {
    if (this.received.length >= count) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ count, resolve }));
  }

  async close(): Promise<void> {
    if (!this.server) return;
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server!.close(() => resolve()));
  }
}
