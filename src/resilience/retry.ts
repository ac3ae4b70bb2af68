/**
 * Retries: full-jitter exponential backoff, Retry-After, and a shared retry
 * budget so an outage cannot multiply upstream traffic.
 *
 * Full jitter (delay uniform in [0, min(cap, base * 2^n))) spreads retries of
 * many clients that failed together, instead of sending them back in waves.
 *
 * The budget has two parts. A token bucket: every request earns `ratio`
 * tokens, every retry spends one, so under load retries add at most ~20 % to
 * traffic whatever the per-request retry count says. And a floor: with the
 * bucket empty, a retry still goes if fewer than `minConcurrent` (3) retries
 * are in flight at once — Envoy's `min_retry_concurrency`, which is what the
 * reliability spec asks for ("≤ 20 % of active requests, floor 3").
 *
 * Why a concurrency floor rather than Finagle's per-second allowance (which
 * this module used before): a per-second trickle banks up while the gateway is
 * quiet and is then spent in one burst, so the extra load it allows depends on
 * how long the calm lasted; a concurrency floor bounds the extra load at every
 * instant (never more than 3 unpaid retries on the wire), needs no clock, and
 * still lets a quiet gateway retry. A fallback to another target is extra
 * traffic too and takes a lease from the same budget; so does a hedge.
 *
 * The retry loop itself is a dispatch step (retry-step.ts), the same one the
 * gateway runs; this module holds the policy it applies.
 */

import { GatewayError } from '../core/errors.ts';
import type { RandomSource } from '../util/random.ts';

export interface BackoffOptions {
  baseMs: number;
  capMs: number;
  /** Longest Retry-After we wait out; beyond it, `retryDelay` says not to retry. */
  maxRetryAfterMs?: number;
  /** [0, 1); Math.random by default. */
  random?: RandomSource;
}

/** Delay before retry number `retry` (0 for the first retry): uniform in [0, min(cap, base * 2^retry)). */
export function backoffDelay(retry: number, options: BackoffOptions): number {
  const ceiling = Math.min(options.capMs, options.baseMs * 2 ** Math.min(retry, 30));
  return Math.floor((options.random ?? Math.random)() * ceiling);
}

/**
 * How long to wait before retrying after `error`, or `undefined` when it must
 * not be retried (final error, or a Retry-After longer than we are willing to wait).
 */
export function retryDelay(error: unknown, retry: number, options: BackoffOptions): number | undefined {
  if (!isRetryable(error)) return undefined;
  const asked = GatewayError.is(error) ? error.retryAfterMs : undefined;
  if (asked !== undefined) {
    if (asked > (options.maxRetryAfterMs ?? Number.POSITIVE_INFINITY)) return undefined;
    // The upstream's wait is a floor; a little jitter on top keeps clients from returning in step.
    return asked + backoffDelay(0, { ...options, capMs: Math.min(options.capMs, options.baseMs) });
  }
  return backoffDelay(retry, options);
}

/** Only errors the error table marks retryable (timeouts, connect errors, 429, 5xx/529); anything else thrown is final. */
export function isRetryable(error: unknown): boolean {
  return GatewayError.is(error) && error.retryable;
}

export interface RetryBudgetOptions {
  /** Tokens earned per request. @default 0.2 */
  ratio?: number;
  /** Retries allowed in flight at once even with an empty bucket (Envoy's min_retry_concurrency). @default 3 */
  minConcurrent?: number;
  /** Most tokens the bucket holds: a burst allowance above the ratio, small enough that a long calm cannot bank a retry storm. @default 30 */
  capacity?: number;
  /** @default capacity */
  initialTokens?: number;
}

/** One admitted retry; release it when the retried attempt ends (extra calls are ignored). */
export interface RetryLease {
  release(): void;
}

export class RetryBudget {
  readonly ratio: number;
  readonly minConcurrent: number;
  readonly capacity: number;
  #tokens: number;
  #inFlight = 0;

  constructor(options: RetryBudgetOptions = {}) {
    this.ratio = options.ratio ?? 0.2;
    this.minConcurrent = options.minConcurrent ?? 3;
    this.capacity = options.capacity ?? 30;
    // Start full, so a freshly started gateway can fall back before it has seen traffic.
    this.#tokens = options.initialTokens ?? this.capacity;
  }

  /** Called once per original request. */
  deposit(): void {
    this.#tokens = Math.min(this.capacity, this.#tokens + this.ratio);
  }

  /**
   * Admits one retry: paid with a token while the bucket has one, otherwise
   * only while fewer than `minConcurrent` retries are in flight. Undefined
   * when refused.
   */
  tryAcquire(): RetryLease | undefined {
    // A small epsilon: five deposits of 0.2 must buy one retry despite float rounding.
    if (this.#tokens >= 1 - 1e-9) this.#tokens = Math.max(0, this.#tokens - 1);
    else if (this.#inFlight >= this.minConcurrent) return undefined;
    this.#inFlight++;
    let released = false;
    return {
      release: () => {
        if (released) return;
        released = true;
        this.#inFlight--;
      },
    };
  }

  get tokens(): number {
    return this.#tokens;
  }

  /** Retries admitted and not yet released. */
  get inFlight(): number {
    return this.#inFlight;
  }
}

/** Resolves after `ms`, or rejects with the signal's reason as soon as it aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted) return Promise.reject(signal.reason);
  if (ms <= 0) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
