/**
 * Standard Webhooks signatures (https://www.standardwebhooks.com): a delivery
 * carries `webhook-id` (the same on every retry of it), `webhook-timestamp`
 * (Unix seconds) and `webhook-signature: v1,<base64 HMAC-SHA256>` over
 * `<id>.<timestamp>.<body>`, keyed with the secret's bytes (`whsec_<base64>`).
 * Receivers verify with any Standard Webhooks library.
 */
import { createHmac } from 'node:crypto';

export const WEBHOOK_SECRET_PREFIX = 'whsec_';

/** The key bytes of a `whsec_…` secret. */
export function webhookKey(secret: string): Buffer {
  if (!secret.startsWith(WEBHOOK_SECRET_PREFIX)) throw new TypeError('a webhook secret starts with whsec_');
  return Buffer.from(secret.slice(WEBHOOK_SECRET_PREFIX.length), 'base64');
}

/** The `webhook-signature` header value for one delivery. */
export function signWebhook(key: Buffer, id: string, timestampS: number, body: string): string {
  const mac = createHmac('sha256', key).update(`${id}.${timestampS}.${body}`).digest('base64');
  return `v1,${mac}`;
}
