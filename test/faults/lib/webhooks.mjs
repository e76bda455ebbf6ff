import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer } from 'node:http';

/**
 * A webhook receiver as a SaaS backend would write one: it checks `X-Signature: sha256=<hex>` against its own
 * HMAC-SHA256 of the raw body (not the service's code) and keeps every event it got, valid or not.
 */
export class WebhookReceiver {
  constructor(secret) {
    this.secret = secret;
    this.events = [];
    this.badSignatures = 0;
    this.server = createServer((req, res) => this.receive(req, res));
    this.server.keepAliveTimeout = 1_000;
  }

  async start() {
    await new Promise((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${this.server.address().port}/atlassian-events`;
    return this;
  }

  async close() {
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server.close(resolve));
  }

  of(type, userId) {
    return this.events.filter((e) => e.type === type && (userId === undefined || e.userId === userId));
  }

  receive(req, res) {
    const chunks = [];
    req.on('data', (chunk) => chunks.push(chunk));
    req.on('end', () => {
      const raw = Buffer.concat(chunks);
      const valid = this.signatureMatches(raw, req.headers['x-signature']);
      if (!valid) {
        this.badSignatures += 1;
        res.writeHead(401).end();
        return;
      }
      const body = JSON.parse(raw.toString('utf8'));
      this.events.push({ id: body.id, type: body.type, userId: body.userId, at: body.at, receivedAt: Date.now() });
      res.writeHead(204).end();
    });
  }

  signatureMatches(raw, header) {
    const given = /^sha256=([0-9a-f]{64})$/.exec(typeof header === 'string' ? header : '')?.[1];
    if (!given) return false;
    const expected = createHmac('sha256', this.secret).update(raw).digest();
    return timingSafeEqual(Buffer.from(given, 'hex'), expected);
  }
}
