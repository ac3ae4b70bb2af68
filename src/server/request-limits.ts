/**
 * The rate limits of a model request: its key's own limits over its tier's
 * (config `tiers`), charged before anything else is done for it. A limited
 * key's responses all carry the limit headers; a request over a limit is
 * refused with 429 `rate_limit_exceeded` and `Retry-After`, in its API's
 * error shape, before any upstream call. Tokens are charged as estimated
 * (prompt plus the output it allows) and corrected to the real usage when the
 * response is done, streams included. `max_concurrent` holds a slot from
 * admission until the response is done (or the client gone); it is taken
 * first, so a request refused for it is not counted by any window.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { AuthenticatedKey } from '../auth/key-store.ts';
import type { Config } from '../config/schema.ts';
import { GatewayError } from '../core/errors.ts';
import type { ConcurrencySlot, ConcurrencyStore } from '../limits/concurrency-store.ts';
import { type Limits, mergeLimits } from '../limits/limit-rules.ts';
import type { RateLimitDecision, RateLimiter } from '../limits/rate-limiter.ts';
import { rateLimitHeaders } from './rate-limit-headers.ts';

export class RequestLimits {
  readonly #tiers: Config['tiers'];
  readonly #limiter: RateLimiter;
  readonly #slots: ConcurrencyStore;
  readonly #onStoreError: (error: unknown) => void;
  /** Effective limits per key object (a changed key is a new object), or null when it has none. */
  readonly #byKey = new WeakMap<AuthenticatedKey, Limits | null>();

  constructor(
    tiers: Config['tiers'],
    limiter: RateLimiter,
    slots: ConcurrencyStore,
    onStoreError: (error: unknown) => void,
  ) {
    this.#tiers = tiers;
    this.#limiter = limiter;
    this.#slots = slots;
    this.#onStoreError = onStoreError;
  }

  /** The key's effective limits (its own over its tier's), or null when nothing limits it. */
  limitsFor(key: AuthenticatedKey): Limits | null {
    let limits = this.#byKey.get(key);
    if (limits === undefined) {
      const tier = key.tier === null ? undefined : this.#tiers[key.tier];
      const merged = key.isMaster ? {} : mergeLimits(tier, key.limits ?? undefined);
      const limited = this.#limiter.rulesFor(merged).length > 0 || merged.max_concurrent !== undefined;
      limits = limited ? merged : null;
      this.#byKey.set(key, limits);
    }
    return limits;
  }

  /**
   * Charges the request to its key; resolves when admitted (headers set on the
   * reply), throws 429 when not. Undefined at once for a key nothing limits,
   * so an unlimited request awaits nothing.
   */
  admit(
    request: FastifyRequest,
    reply: FastifyReply,
    estimateTokens: () => number,
  ): Promise<void> | undefined {
    const key = request.key!;
    const limits = this.limitsFor(key);
    if (limits === null) return undefined;
    return this.#admit(key, limits, reply, estimateTokens, request);
  }

  async #admit(
    key: AuthenticatedKey,
    limits: Limits,
    reply: FastifyReply,
    estimateTokens: () => number,
    request: FastifyRequest,
  ): Promise<void> {
    const subject = `key:${key.id}`;
    const slot =
      limits.max_concurrent === undefined ? undefined : await this.#slot(subject, limits.max_concurrent);
    let decision: RateLimitDecision | undefined;
    try {
      const tokens = this.#limiter.countsTokens(limits) ? estimateTokens() : 0;
      decision = await this.#limiter.admit(subject, limits, tokens);
      if (decision !== undefined) {
        reply.headers(rateLimitHeaders(decision));
        if (!decision.admitted) throw refusal(decision);
      }
    } catch (error) {
      void slot?.release().catch(this.#onStoreError);
      throw error;
    }
    if (slot === undefined && (decision === undefined || decision.tokens === 0)) return;
    // Once the response is done (answered, streamed, failed or abandoned): the slot is
    // freed and the real usage replaces the estimate.
    reply.raw.once('close', () => {
      void slot?.release().catch(this.#onStoreError);
      if (decision !== undefined && decision.tokens > 0) {
        void this.#limiter.settle(decision, request.usage?.tokens ?? decision.tokens);
      }
    });
  }

  /** A slot of the key's in-flight cap (none needed when its store is out of reach), or 429. */
  async #slot(subject: string, max: number): Promise<ConcurrencySlot | undefined> {
    let taken: Awaited<ReturnType<ConcurrencyStore['acquire']>>;
    try {
      taken = await this.#slots.acquire(subject, max);
    } catch (error) {
      this.#onStoreError(error);
      return undefined;
    }
    if (taken.slot !== undefined) return taken.slot;
    throw new GatewayError(
      'rate_limit_exceeded',
      `Rate limit reached: the key's limit of ${max} requests in flight at once; retry when one has finished`,
      { retryAfterMs: 1_000 },
    );
  }
}

function refusal(decision: RateLimitDecision): GatewayError {
  const state = decision.refusedBy;
  const what =
    state === undefined
      ? 'rate limit'
      : `limit of ${state.rule.limit} ${state.rule.id.replace('-', ' per ')}`;
  const never = decision.retryAfterMs === Number.POSITIVE_INFINITY;
  return new GatewayError(
    'rate_limit_exceeded',
    never
      ? `This request alone needs more than the key's ${what}; it can never be admitted as it is`
      : `Rate limit reached: the key's ${what}; retry after the time in Retry-After`,
    never ? {} : { retryAfterMs: decision.retryAfterMs! },
  );
}
