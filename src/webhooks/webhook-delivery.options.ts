/** How the dispatcher paces itself. Fixed in production; tests shorten the timeout. */
export interface WebhookDeliveryOptions {
  /** How often a replica looks for due events. */
  readonly intervalMs: number;
  /** Events claimed (and sent concurrently) per pass. */
  readonly batchSize: number;
  /** One POST may take this long before it counts as failed. */
  readonly timeoutMs: number;
  /**
   * A claimed event is invisible to other replicas this long. Longer than any send (timeout) plus recording,
   * so only a replica that died mid-send lets another one send the event again.
   */
  readonly leaseMs: number;
  /** The first retry waits up to this long; each further failure doubles it. */
  readonly baseDelayMs: number;
  /** No wait between two attempts is longer than this. */
  readonly maxDelayMs: number;
  /** An event not delivered this long after it happened is given up. */
  readonly giveUpAfterMs: number;
}

export const WEBHOOK_DELIVERY_OPTIONS = Symbol('WEBHOOK_DELIVERY_OPTIONS');

export const DEFAULT_WEBHOOK_DELIVERY_OPTIONS: WebhookDeliveryOptions = {
  intervalMs: 2_000,
  batchSize: 20,
  timeoutMs: 10_000,
  leaseMs: 60_000,
  baseDelayMs: 10_000,
  maxDelayMs: 60 * 60_000,
  giveUpAfterMs: 3 * 24 * 60 * 60_000,
};
