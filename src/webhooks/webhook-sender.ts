/**
 * Delivers signed webhooks (./signature.ts) to an endpoint: a POST of the
 * event as JSON, retried on the configured schedule (default 5 s, 5 min,
 * 30 min, 2 h) while the endpoint fails (a network error, a timeout, a non-2xx
 * answer, a redirect), every retry under the same `webhook-id` with a fresh
 * timestamp and signature. Each attempt goes through `deliverOnce`
 * (./webhook-delivery.ts), so under the webhook policy: an attempt the policy
 * refuses is final (retrying would be refused the same way). Retries are
 * timers in this process: a restart forgets pending ones (durable delivery
 * belongs to the job queue). A delivery never blocks the request that raised
 * the event.
 */
import { randomUUID } from 'node:crypto';
import { signWebhook, webhookKey } from './signature.ts';
import { DEFAULT_WEBHOOK_TIMEOUT_MS, type DeliveryOutcome, deliverOnce } from './webhook-delivery.ts';
import { WebhookPolicy } from './webhook-url-policy.ts';

export interface WebhookEvent {
  /** e.g. `budget.alert`. */
  type: string;
  data: Record<string, unknown>;
}

/** One attempt's outcome, as a caller records it (the job system, in the job). */
export interface WebhookAttempt extends DeliveryOutcome {
  /** The delivery's `webhook-id`. */
  id: string;
  /** 1 for the first attempt. */
  attempt: number;
  /** When the attempt started (epoch ms). */
  at: number;
  /** No attempt follows: delivered, refused, the schedule ran out, or the sender closed. */
  final: boolean;
}

export interface WebhookSenderOptions {
  secret: string;
  retryScheduleS: readonly number[];
  /** Per attempt. @default 10000 */
  timeoutMs?: number;
  /**
   * Where deliveries may go (./webhook-url-policy.ts). Default: public
   * addresses only. An operator's own endpoint gets `operatorEndpointPolicy`.
   */
  policy?: WebhookPolicy;
  onFailure?: (failure: { url: string; id: string; attempt: number; error: string; final: boolean }) => void;
}

export interface SendOptions {
  /**
   * The delivery's `webhook-id` (receivers deduplicate by it): a caller that
   * may send the same event twice (a job run again) passes a stable one.
   * Default: a new `msg_<uuid>`.
   */
  id?: string;
  /** Called after every attempt of this delivery, the last one included (it must not throw). */
  onAttempt?: (attempt: WebhookAttempt) => void;
}

export class WebhookSender {
  readonly #key: Buffer;
  readonly #schedule: readonly number[];
  readonly #timeoutMs: number;
  readonly #policy: WebhookPolicy;
  readonly #onFailure: NonNullable<WebhookSenderOptions['onFailure']>;
  readonly #timers = new Set<NodeJS.Timeout>();
  #closed = false;

  constructor(options: WebhookSenderOptions) {
    this.#key = webhookKey(options.secret);
    this.#schedule = options.retryScheduleS;
    this.#timeoutMs = options.timeoutMs ?? DEFAULT_WEBHOOK_TIMEOUT_MS;
    this.#policy = options.policy ?? new WebhookPolicy();
    this.#onFailure = options.onFailure ?? (() => {});
  }

  /** Sends `event` to `url` (retrying in the background); resolves with the delivery's id once the first attempt ends. */
  async send(url: string, event: WebhookEvent, options: SendOptions = {}): Promise<string> {
    const id = options.id ?? `msg_${randomUUID()}`;
    const body = JSON.stringify({ type: event.type, timestamp: new Date().toISOString(), data: event.data });
    await this.#attempt(url, id, body, 0, options.onAttempt);
    return id;
  }

  /** Cancels pending retries. */
  close(): void {
    this.#closed = true;
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers.clear();
  }

  async #attempt(
    url: string,
    id: string,
    body: string,
    attempt: number,
    onAttempt: SendOptions['onAttempt'],
  ): Promise<void> {
    if (this.#closed) return;
    const at = Date.now();
    const timestamp = Math.floor(at / 1000);
    const signature = signWebhook(this.#key, id, timestamp, body);
    const outcome = await deliverOnce(
      url,
      { id, timestamp, body, signature },
      { policy: this.#policy, timeoutMs: this.#timeoutMs },
    );
    const delayS = outcome.ok || outcome.refused ? undefined : this.#schedule[attempt];
    const final = delayS === undefined || this.#closed;
    onAttempt?.({ ...outcome, id, attempt: attempt + 1, at, final });
    if (outcome.ok) return;
    this.#onFailure({ url, id, attempt: attempt + 1, error: outcome.error ?? 'failed', final });
    if (final) return;
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      void this.#attempt(url, id, body, attempt + 1, onAttempt);
    }, delayS * 1000);
    timer.unref();
    this.#timers.add(timer);
  }
}
