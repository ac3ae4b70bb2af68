/**
 * The rate limits of a model request: its key's own limits over its tier's
 * (config `tiers`), charged before anything else is done for it. A limited
 * key's responses all carry the limit headers; a request over a limit is
 * refused with 429 `rate_limit_exceeded` and `Retry-After`, in its API's
 * error shape, before any upstream call. Tokens are charged as estimated
 * (prompt plus the output it allows) and corrected to the real usage when the
 * response is done, streams included.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { AuthenticatedKey } from '../auth/key-store.ts';
import type { Config } from '../config/schema.ts';
import { GatewayError } from '../core/errors.ts';
import { type Limits, mergeLimits } from '../limits/limit-rules.ts';
import type { RateLimitDecision, RateLimiter } from '../limits/rate-limiter.ts';
import { rateLimitHeaders } from './rate-limit-headers.ts';

export class RequestLimits {
  readonly #tiers: Config['tiers'];
  readonly #limiter: RateLimiter;
  /** Effective limits per key object (a changed key is a new object), or null when it has none. */
  readonly #byKey = new WeakMap<AuthenticatedKey, Limits | null>();

  constructor(tiers: Config['tiers'], limiter: RateLimiter) {
    this.#tiers = tiers;
    this.#limiter = limiter;
  }

  /** The key's effective limits (its own over its tier's), or null when nothing limits it. */
  limitsFor(key: AuthenticatedKey): Limits | null {
    let limits = this.#byKey.get(key);
    if (limits === undefined) {
      const tier = key.tier === null ? undefined : this.#tiers[key.tier];
      const merged = key.isMaster ? {} : mergeLimits(tier, key.limits ?? undefined);
      limits = this.#limiter.rulesFor(merged).length > 0 ? merged : null;
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
    const tokens = this.#limiter.countsTokens(limits) ? estimateTokens() : 0;
    const decision = await this.#limiter.admit(`key:${key.id}`, limits, tokens);
    if (decision === undefined) return;
    reply.headers(rateLimitHeaders(decision));
    if (!decision.admitted) throw refusal(decision);
    if (decision.tokens > 0 || tokens > 0) {
      // Once the response is done (answered, streamed, failed or abandoned), the real usage replaces the estimate.
      reply.raw.once('close', () => {
        void this.#limiter.settle(decision, request.usage?.tokens ?? decision.tokens);
      });
    }
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
