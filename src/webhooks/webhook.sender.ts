import { Inject, Injectable } from '@nestjs/common';
import { AppConfig } from '../config/app-config.js';
import { WEBHOOK_DELIVERY_OPTIONS, type WebhookDeliveryOptions } from './webhook-delivery.options.js';
import { webhookSignature } from './webhook-signature.js';

export interface OutgoingWebhook {
  readonly id: string;
  readonly type: string;
  /** The stored body: sent and signed byte for byte as it was fixed at enqueue. */
  readonly body: string;
}

export type SendOutcome =
  | { readonly delivered: true; readonly status: number }
  /** `interrupted`: the service is stopping; the receiver may or may not have got it. */
  | { readonly delivered: false; readonly reason: string; readonly interrupted: boolean };

/** POSTs one webhook to WEBHOOK_URL. It reports, never throws, and never reads or repeats what the receiver answered. */
@Injectable()
export class WebhookSender {
  constructor(
    private readonly config: AppConfig,
    @Inject(WEBHOOK_DELIVERY_OPTIONS) private readonly options: WebhookDeliveryOptions,
  ) {}

  get enabled(): boolean {
    return this.config.webhook.url !== undefined && this.config.webhook.secret !== undefined;
  }

  async send(webhook: OutgoingWebhook, stopping: AbortSignal): Promise<SendOutcome> {
    const { url, secret } = this.config.webhook;
    if (!url || !secret) return { delivered: false, reason: 'WEBHOOK_URL is not set', interrupted: false };
    const body = Buffer.from(webhook.body, 'utf8');
    let response: Response;
    try {
      response = await fetch(url, {
        method: 'POST',
        headers: {
          'Content-Type': 'application/json',
          'User-Agent': 'atlassian-token-service',
          'X-Signature': webhookSignature(body, secret),
          'X-Webhook-Id': webhook.id,
          'X-Webhook-Type': webhook.type,
        },
        body,
        // A redirect is a misconfigured URL: following it would send the signed body somewhere nobody named.
        redirect: 'manual',
        signal: AbortSignal.any([stopping, AbortSignal.timeout(this.options.timeoutMs)]),
      });
    } catch (error) {
      if (stopping.aborted) return { delivered: false, reason: 'interrupted by shutdown', interrupted: true };
      return { delivered: false, reason: describeFailure(error, this.options.timeoutMs), interrupted: false };
    }
    // The answer's body is not needed; dropping it frees the connection.
    await response.body?.cancel().catch(() => undefined);
    if (response.status >= 200 && response.status < 300) return { delivered: true, status: response.status };
    const redirect = response.status >= 300 && response.status < 400 ? ' (redirects are not followed)' : '';
    return { delivered: false, reason: `HTTP ${response.status}${redirect}`, interrupted: false };
  }
}

function describeFailure(error: unknown, timeoutMs: number): string {
  const name = (error as Error | undefined)?.name;
  if (name === 'TimeoutError' || name === 'AbortError') return `no answer within ${timeoutMs} ms`;
  const cause = (error as { cause?: { code?: unknown } } | undefined)?.cause;
  const code = typeof cause?.code === 'string' ? cause.code : undefined;
  return code ? `could not connect (${code})` : 'could not connect';
}
