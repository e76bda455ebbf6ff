import { Inject, Injectable } from '@nestjs/common';
import { WEBHOOK_DELIVERY_OPTIONS, type WebhookDeliveryOptions } from './webhook-delivery.options.js';

/** The source of jitter for retry delays, injected so backoff can be tested exactly. */
export abstract class WebhookJitter {
  /** A number in [0, 1). */
  abstract next(): number;
}

export class MathRandomWebhookJitter extends WebhookJitter {
  next(): number {
    return Math.random();
  }
}

/**
 * When a failed event is tried again: exponential backoff with full jitter (a receiver that was down is not
 * hit by every replica's backlog at the same instant), capped, and given up once the event is too old.
 */
@Injectable()
export class WebhookRetryPolicy {
  constructor(
    @Inject(WEBHOOK_DELIVERY_OPTIONS) private readonly options: WebhookDeliveryOptions,
    private readonly jitter: WebhookJitter,
  ) {}

  /** True when the event is past the give-up age and must not be sent (any more). */
  expired(createdAt: Date, now: Date): boolean {
    return now.getTime() - createdAt.getTime() >= this.options.giveUpAfterMs;
  }

  /** After `failures` failed attempts (1 for the first): the next attempt's time, or null to give up. */
  nextAttemptAt(failures: number, createdAt: Date, now: Date): Date | null {
    const ceiling = Math.min(this.options.maxDelayMs, this.options.baseDelayMs * 2 ** Math.max(0, failures - 1));
    const next = new Date(now.getTime() + Math.floor(this.jitter.next() * ceiling));
    return this.expired(createdAt, next) ? null : next;
  }
}
