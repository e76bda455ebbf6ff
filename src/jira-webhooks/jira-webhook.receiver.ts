import { createHash, type webcrypto } from 'node:crypto';
import { Injectable, Logger } from '@nestjs/common';
import { DataSource, type EntityManager } from 'typeorm';
import { Clock } from '../common/clock.js';
import { AppConfig } from '../config/app-config.js';
import { StatementBatcher } from '../database/statement-batcher.js';
import { OutboxRepository } from '../webhooks/outbox.repository.js';
import { deliveryVerificationKey, verifyDeliveryJwt } from './jira-webhook-jwt.js';
import { JiraWebhookMetrics, type DeliveryOutcome } from './jira-webhooks.metrics.js';
import { JiraWebhooksRepository } from './jira-webhooks.repository.js';

/** The largest delivery accepted; Jira's issue payloads are well below it. */
export const JIRA_WEBHOOK_MAX_BODY_BYTES = 1024 * 1024;
const MAX_MATCHED_IDS = 1000;
/** Deliveries written in one transaction under load, and how many such transactions run at once. */
const WRITE_BATCH = 64;
const WRITE_FLUSHES = 4;

/** One verified delivery, to be recorded and forwarded. */
interface AcceptedDelivery {
  readonly identifier: string;
  readonly event: ParsedEvent;
  readonly at: Date;
}

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
   * Concurrent deliveries share one transaction (one commit, one flush of the WAL), each still recorded and
   * forwarded before its own 202; a lone delivery is never held back.
   */
  private readonly writes = new StatementBatcher<AcceptedDelivery, DeliveryOutcome>(
    (deliveries) =>
      this.dataSource.transaction(async (manager) => {
        const outcomes: DeliveryOutcome[] = [];
        for (const delivery of deliveries) outcomes.push(await this.write(manager, delivery));
        return outcomes;
      }),
    WRITE_BATCH,
    WRITE_FLUSHES,
  );

  constructor(
    private readonly dataSource: DataSource,
    private readonly repository: JiraWebhooksRepository,
    private readonly outbox: OutboxRepository,
    private readonly metrics: JiraWebhookMetrics,
    private readonly clock: Clock,
    config: AppConfig,
  ) {
    this.secret = deliveryVerificationKey(config.atlassian.clientSecret);
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
    const outcome = await this.writes.submit({ identifier, event, at: now });
    this.metrics.recordDelivery(outcome);
    if (outcome === 'unknown') this.logger.log('Jira webhook delivery for no registration of ours: answered 202 and dropped');
    return { status: 202, outcome };
  }

  /** Records one delivery and writes one `jira.event` per connection it matched, in the batch's transaction. */
  private async write(manager: EntityManager, { identifier, event, at }: AcceptedDelivery): Promise<DeliveryOutcome> {
    if (!(await this.repository.recordDelivery(manager, identifier, at))) return 'duplicate';
    const matched = await this.repository.matchDelivery(manager, event.matchedWebhookIds, event.siteUrl, at);
    for (const connection of matched) {
      await this.outbox.enqueue(
        manager,
        {
          type: 'jira.event',
          userId: connection.userId,
          data: { cloudId: connection.cloudId, jiraWebhookIds: connection.jiraWebhookIds, event: event.json },
        },
        at,
      );
    }
    return matched.length > 0 ? 'accepted' : 'unknown';
  }
}

interface ParsedEvent {
  readonly json: Record<string, unknown>;
  readonly matchedWebhookIds: number[];
  /** The site the event comes from, from the `self` of its issue, comment or other object; null when it names none. */
  readonly siteUrl: string | null;
}

function parseEvent(body: Buffer): ParsedEvent | null {
  let json: unknown;
  try {
    json = JSON.parse(body.toString('utf8'));
  } catch {
    return null;
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) return null;
  const record = json as Record<string, unknown>;
  const ids = record.matchedWebhookIds;
  if (!Array.isArray(ids) || ids.length > MAX_MATCHED_IDS || !ids.every((id) => Number.isSafeInteger(id))) return null;
  return { json: record, matchedWebhookIds: ids as number[], siteUrl: siteUrlOf(record) };
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
