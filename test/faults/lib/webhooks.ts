import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** One webhook the receiver accepted, with when it came (epoch milliseconds). */
export interface ReceivedEvent {
  id: string;
  type: string;
  userId: string;
  /** The event's own time (ISO). */
  at: string;
  receivedAt: number;
}

/**
 * A webhook receiver as a SaaS backend would write one: it checks `X-Signature: sha256=<hex>` against its own
 * HMAC-SHA256 of the raw body (not the service's code) and keeps every event it got, valid or not.
 */
export class WebhookReceiver {
  readonly events: ReceivedEvent[] = [];
  badSignatures = 0;
  url: string;
  private readonly server: Server;

  constructor(private readonly secret: string) {
    this.server = createServer((req, res) => this.receive(req, res));
    this.server.keepAliveTimeout = 1_000;
  }

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/atlassian-events`;
    return this;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server.close(resolve));
  }

  of(type: string, userId?: string): ReceivedEvent[] {
    return this.events.filter((e) => e.type === type && (userId === undefined || e.userId === userId));
  }

  receive(req: IncomingMessage, res: ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const raw = Buffer.concat(chunks);
      const valid = this.signatureMatches(raw, req.headers['x-signature']);
      if (!valid) {
        this.badSignatures += 1;
        res.writeHead(401).end();
        return;
      }
      const body = JSON.parse(raw.toString('utf8')) as Omit<ReceivedEvent, 'receivedAt'>;
      this.events.push({ id: body.id, type: body.type, userId: body.userId, at: body.at, receivedAt: Date.now() });
      res.writeHead(204).end();
    });
  }

  signatureMatches(raw: Buffer, header: string | string[] | undefined): boolean {
    const given = /^sha256=([0-9a-f]{64})$/.exec(typeof header === 'string' ? header : '')?.[1];
    if (!given) return false;
    const expected = createHmac('sha256', this.secret).update(raw).digest();
    return timingSafeEqual(Buffer.from(given, 'hex'), expected);
  }
}
