/**
 * The limits of a model request, checked before anything else is done for
 * it, in this order:
 *
 * 1. `max_concurrent`: a slot held from admission until the response is done
 *    (or the client gone); taken first, so a request refused for it is not
 *    counted by anything else;
 * 2. rate limits, the key's own over its tier's (config `tiers`): requests,
 *    and tokens charged as estimated (prompt plus the output it allows) then
 *    corrected to the real usage when the response is done, streams included;
 *    the limit headers on every response of a limited key; 429
 *    `rate_limit_exceeded` with `Retry-After` when over;
 * 3. the key's budget: the request's estimated cost (its dearest target's
 *    prices) reserved in every window, settled to the real cost when it ends;
 *    402 `budget_exceeded` when a window has no room.
 *
 * A refusal is in the route's own error shape and happens before any
 * upstream call.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { AuthenticatedKey } from '../auth/key-store.ts';
import type { AttemptPricer } from '../billing/attempt-pricer.ts';
import type { Config } from '../config/schema.ts';
import { GatewayError } from '../core/errors.ts';
import type { BudgetGuard, BudgetReservation } from '../limits/budget-guard.ts';
import type { ConcurrencySlot, ConcurrencyStore } from '../limits/concurrency-store.ts';
import { type Limits, mergeLimits } from '../limits/limit-rules.ts';
import type { RateLimitDecision, RateLimiter } from '../limits/rate-limiter.ts';
import type { ModelRoute } from '../routing/model-table.ts';
import { rateLimitHeaders } from './rate-limit-headers.ts';

/** What a request is expected to use: its prompt, and the most output it allows (0: it sets no cap). */
export interface TokenEstimate {
  prompt: number;
  output: number;
}

/** Output reserved against a budget for a request that sets no cap of its own. */
export const UNCAPPED_OUTPUT_ESTIMATE = 1_024;

export interface RequestLimitsParts {
  tiers: Config['tiers'];
  limiter: RateLimiter;
  slots: ConcurrencyStore;
  budgets: BudgetGuard;
  pricer: AttemptPricer;
  onStoreError: (error: unknown) => void;
}

/** A key's effective limits and budget; null when nothing limits it. */
interface KeyLimits {
  limits: Limits;
  budget: AuthenticatedKey['budget'];
}

export class RequestLimits {
  readonly #parts: RequestLimitsParts;
  /** Per key object (a changed key is a new object). */
  readonly #byKey = new WeakMap<AuthenticatedKey, KeyLimits | null>();

  constructor(parts: RequestLimitsParts) {
    this.#parts = parts;
  }

  /** The key's effective limits (its own over its tier's) and budget, or null when nothing limits it. */
  limitsFor(key: AuthenticatedKey): KeyLimits | null {
    let found = this.#byKey.get(key);
    if (found === undefined) {
      const tier = key.tier === null ? undefined : this.#parts.tiers[key.tier];
      const limits = key.isMaster ? {} : mergeLimits(tier, key.limits ?? undefined);
      const limited =
        this.#parts.limiter.rulesFor(limits).length > 0 ||
        limits.max_concurrent !== undefined ||
        (key.budget !== null && Object.keys(key.budget).length > 0);
      found = limited ? { limits, budget: key.budget } : null;
      this.#byKey.set(key, found);
    }
    return found;
  }

  /**
   * Charges the request to its key; resolves when admitted (headers set on the
   * reply), throws 429 or 402 when not. Undefined at once for a key nothing
   * limits, so an unlimited request awaits nothing.
   */
  admit(
    request: FastifyRequest,
    reply: FastifyReply,
    route: ModelRoute,
    estimate: () => TokenEstimate,
  ): Promise<void> | undefined {
    const key = request.key!;
    const found = this.limitsFor(key);
    if (found === null) return undefined;
    return this.#admit(`key:${key.id}`, found, request, reply, route, once(estimate));
  }

  async #admit(
    subject: string,
    { limits, budget }: KeyLimits,
    request: FastifyRequest,
    reply: FastifyReply,
    route: ModelRoute,
    estimate: () => TokenEstimate,
  ): Promise<void> {
    const { limiter, budgets, onStoreError } = this.#parts;
    const slot =
      limits.max_concurrent === undefined ? undefined : await this.#slot(subject, limits.max_concurrent);
    let decision: RateLimitDecision | undefined;
    let reservation: BudgetReservation | undefined;
    try {
      const tokens = limiter.countsTokens(limits) ? estimate().prompt + estimate().output : 0;
      decision = await limiter.admit(subject, limits, tokens);
      if (decision !== undefined) {
        reply.headers(rateLimitHeaders(decision));
        if (!decision.admitted) throw rateRefusal(decision);
      }
      if (budget !== null) {
        reservation = await budgets.reserve(subject, budget, this.#costEstimate(route, estimate()));
        if (reservation !== undefined && !reservation.admitted) {
          // Nothing reaches an upstream: the tokens charged for it are given back.
          if (decision !== undefined) void limiter.settle(decision, 0);
          throw budgetRefusal(reservation);
        }
      }
    } catch (error) {
      void slot?.release().catch(onStoreError);
      throw error;
    }
    const settlesTokens = decision !== undefined && decision.tokens > 0;
    if (slot === undefined && !settlesTokens && reservation === undefined) return;
    // Once the response is done (answered, streamed, failed or abandoned): the slot is
    // freed, the real usage replaces the token estimate, the real cost the reservation.
    reply.raw.once('close', () => {
      void slot?.release().catch(onStoreError);
      const usage = request.usage;
      if (settlesTokens) void limiter.settle(decision!, usage?.tokens ?? decision!.tokens);
      if (reservation !== undefined) void budgets.settle(reservation, usage?.costMicros ?? 0);
    });
  }

  /** The request's cost were its dearest target to answer it in full (0 when no target has a known price). */
  #costEstimate(route: ModelRoute, tokens: TokenEstimate): number {
    const usage = {
      prompt_tokens: tokens.prompt,
      completion_tokens: tokens.output > 0 ? tokens.output : UNCAPPED_OUTPUT_ESTIMATE,
      total_tokens: 0,
    };
    let dearest = 0;
    for (const target of route.targets) {
      dearest = Math.max(dearest, this.#parts.pricer.costMicros(target.model, usage) ?? 0);
    }
    return dearest;
  }

  /** A slot of the key's in-flight cap (none needed when its store is out of reach), or 429. */
  async #slot(subject: string, max: number): Promise<ConcurrencySlot | undefined> {
    let taken: Awaited<ReturnType<ConcurrencyStore['acquire']>>;
    try {
      taken = await this.#parts.slots.acquire(subject, max);
    } catch (error) {
      this.#parts.onStoreError(error);
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

function once<T>(compute: () => T): () => T {
  let value: T | undefined;
  let done = false;
  return () => {
    if (!done) {
      value = compute();
      done = true;
    }
    return value as T;
  };
}

function rateRefusal(decision: RateLimitDecision): GatewayError {
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

const PERIOD_NAMES = { day: 'daily', month: 'monthly', total: 'total' } as const;

function budgetRefusal(reservation: BudgetReservation): GatewayError {
  const period = reservation.refusedBy!;
  const usd = (period.limitMicros / 1_000_000).toFixed(2);
  return new GatewayError(
    'budget_exceeded',
    `Budget exceeded: the key's ${PERIOD_NAMES[period.kind]} budget of $${usd} has no room for this request` +
      (period.kind === 'total' ? '' : ` until ${new Date(period.endMs).toISOString()}`),
  );
}
