/**
 * Delivers signed webhooks (./signature.ts) to an operator's endpoint: a POST
 * of the event as JSON, retried on the configured schedule (default 5 s, 5 min,
 * 30 min, 2 h) while the endpoint fails (a network error, a timeout, a non-2xx
 * answer), every retry under the same `webhook-id`. Retries are timers in this
 * process: a restart forgets pending ones (durable delivery belongs to the job
 * queue). A delivery never blocks the request that raised the event.
 */
import { randomUUID } from 'node:crypto';
import { signWebhook, webhookKey } from './signature.ts';

export interface WebhookEvent {
  /** e.g. `budget.alert`. */
  type: string;
  data: Record<string, unknown>;
}

export interface WebhookSenderOptions {
  secret: string;
  retryScheduleS: readonly number[];
  /** Per attempt. */
  timeoutMs?: number;
  onFailure?: (failure: { url: string; id: string; attempt: number; error: string; final: boolean }) => void;
}

export class WebhookSender {
  readonly #key: Buffer;
  readonly #schedule: readonly number[];
  readonly #timeoutMs: number;
  readonly #onFailure: NonNullable<WebhookSenderOptions['onFailure']>;
  readonly #timers = new Set<NodeJS.Timeout>();
  #closed = false;

  constructor(options: WebhookSenderOptions) {
    this.#key = webhookKey(options.secret);
    this.#schedule = options.retryScheduleS;
    this.#timeoutMs = options.timeoutMs ?? 10_000;
    this.#onFailure = options.onFailure ?? (() => {});
  }

  /** Sends `event` to `url` (retrying in the background); resolves with the delivery's id once the first attempt ends. */
  async send(url: string, event: WebhookEvent): Promise<string> {
    const id = `msg_${randomUUID()}`;
    const body = JSON.stringify({ type: event.type, timestamp: new Date().toISOString(), data: event.data });
    await this.#attempt(url, id, body, 0);
    return id;
  }

  /** Cancels pending retries. */
  close(): void {
    this.#closed = true;
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers.clear();
  }

  async #attempt(url: string, id: string, body: string, attempt: number): Promise<void> {
    if (this.#closed) return;
    const timestamp = Math.floor(Date.now() / 1000);
    let error: string | undefined;
    try {
      const res = await fetch(url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'webhook-id': id,
          'webhook-timestamp': String(timestamp),
          'webhook-signature': signWebhook(this.#key, id, timestamp, body),
        },
        body,
        redirect: 'manual',
        signal: AbortSignal.timeout(this.#timeoutMs),
      });
      await res.arrayBuffer().catch(() => undefined);
      if (res.status >= 200 && res.status < 300) return;
      error = `HTTP ${res.status}`;
    } catch (cause) {
      error = cause instanceof Error ? cause.name : 'failed';
    }
    const delayS = this.#schedule[attempt];
    this.#onFailure({ url, id, attempt: attempt + 1, error, final: delayS === undefined });
    if (delayS === undefined || this.#closed) return;
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      void this.#attempt(url, id, body, attempt + 1);
    }, delayS * 1000);
    timer.unref();
    this.#timers.add(timer);
  }
}
