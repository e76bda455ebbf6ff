import { createHash, type webcrypto } from 'node:crypto';
import { Injectable, Logger } from '@nestjs/common';
import { Clock } from '../common/clock.js';
import { AppConfig } from '../config/app-config.js';
import { StatementBatcher } from '../database/statement-batcher.js';
import { deliveryVerificationKey, verifyDeliveryJwt } from './jira-webhook-jwt.js';
import { JiraWebhookMetrics, type DeliveryOutcome } from './jira-webhooks.metrics.js';
import { JiraWebhooksRepository, type DeliveryRecord, type RecordedDelivery } from './jira-webhooks.repository.js';

/** The largest delivery accepted; Jira's issue payloads are well below it. */
export const JIRA_WEBHOOK_MAX_BODY_BYTES = 1024 * 1024;
const MAX_MATCHED_IDS = 1000;
/** Deliveries written in one statement under load; the next batch is written once this one has committed. */
const WRITE_BATCH = 256;
const WRITE_FLUSHES = 1;

export interface ReceiverAnswer {
  readonly status: 202 | 400 | 401;
  readonly outcome: DeliveryOutcome | 'malformed';
}

/**
 * Takes Jira's deliveries (SPEC "Jira webhooks"): the JWT is checked before anything else is read, and a delivery
 * that fails it is answered 401 with nothing stored. An accepted delivery's identifier and one `jira.event` outbox
 * event per connection it matched are written in one transaction before the answer, so a delivery answered 202 is
 * never lost, and Jira's retry of it (same identifier, within seven days) is answered 202 and forwarded nowhere.
 */
@Injectable()
export class JiraWebhookReceiver {
  private readonly logger = new Logger(JiraWebhookReceiver.name);
  /** The client secret as a verification key, made once (see deliveryVerificationKey). */
  private readonly secret: webcrypto.CryptoKey;
  /**
   * Concurrent deliveries share one statement (one commit, one flush of the WAL), each still recorded and forwarded
   * before its own 202; a lone delivery is never held back.
   */
  private readonly writes: StatementBatcher<DeliveryRecord, RecordedDelivery>;

  constructor(
    repository: JiraWebhooksRepository,
    private readonly metrics: JiraWebhookMetrics,
    private readonly clock: Clock,
    config: AppConfig,
  ) {
    this.secret = deliveryVerificationKey(config.atlassian.clientSecret);
    this.writes = new StatementBatcher((deliveries) => repository.recordDeliveries(deliveries), WRITE_BATCH, WRITE_FLUSHES);
  }

  async receive(authorization: string | undefined, identifierHeader: string | undefined, body: Buffer): Promise<ReceiverAnswer> {
    const now = this.clock.now();
    const refusal = await verifyDeliveryJwt(authorization, this.secret, now);
    if (refusal) {
      this.metrics.recordDelivery('rejected');
      // The request log already has the 401, sampled under a flood; the reason is detail.
      this.logger.debug(`Jira webhook delivery refused: its JWT is ${refusal.replace(/_/g, ' ')}`);
      return { status: 401, outcome: 'rejected' };
    }
    const event = parseEvent(body);
    if (!event) {
      this.logger.warn('Jira webhook delivery refused: its body is not a JSON object with matchedWebhookIds');
      return { status: 400, outcome: 'malformed' };
    }
    // Jira sends the identifier on every delivery; without one, the body itself identifies its retries.
    const identifier = identifierHeader?.slice(0, 200) || `sha256:${createHash('sha256').update(body).digest('hex')}`;
    const outcome = await this.writes.submit({
      identifier,
      at: now,
      event: event.text,
      matchedWebhookIds: event.matchedWebhookIds,
      siteUrl: event.siteUrl,
    });
    this.metrics.recordDelivery(outcome);
    if (outcome === 'unknown') this.logger.log('Jira webhook delivery for no registration of ours: answered 202 and dropped');
    return { status: 202, outcome };
  }
}

interface ParsedEvent {
  /** The body as received, a JSON object. */
  readonly text: string;
  readonly matchedWebhookIds: number[];
  /** The site the event comes from, from the `self` of its issue, comment or other object; null when it names none. */
  readonly siteUrl: string | null;
}

function parseEvent(body: Buffer): ParsedEvent | null {
  const text = body.toString('utf8');
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return null;
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) return null;
  const record = json as Record<string, unknown>;
  const ids = record.matchedWebhookIds;
  if (!Array.isArray(ids) || ids.length > MAX_MATCHED_IDS || !ids.every((id) => Number.isSafeInteger(id))) return null;
  return { text, matchedWebhookIds: ids as number[], siteUrl: siteUrlOf(record) };
}

/** `https://acme.atlassian.net` from `{ issue: { self: "https://acme.atlassian.net/rest/api/2/issue/10002" } }`. */
function siteUrlOf(event: Record<string, unknown>): string | null {
  for (const value of Object.values(event)) {
    const self = (value as { self?: unknown } | null)?.self;
    if (typeof self !== 'string' || !URL.canParse(self)) continue;
    return new URL(self).origin;
  }
  return null;
}
