import { createHmac } from 'node:crypto';

/**
 * The `X-Signature` header of a webhook: HMAC-SHA256 of exactly the bytes sent as the body, keyed with
 * WEBHOOK_SECRET. Nothing else (no timestamp, no header) is signed: the body's `id` and `at` carry replay protection.
 */
export function webhookSignature(body: Buffer, secret: string): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}
