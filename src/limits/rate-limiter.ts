/**
 * Window rate limits for any subject, usable in-process (a MemoryRateLimitStore)
 * or across instances (a RedisRateLimitStore): `admit` charges one request
 * and its estimated tokens to every window rule of a limits object at once,
 * `settle` corrects the tokens once the real usage is known.
 *
 * A store that fails (Redis unreachable) does not fail the request: it is
 * admitted, unlimited, and `onStoreError` is told. Refusing every request
 * because a counter is out of reach would turn a Redis outage into a
 * gateway outage; the limit is back as soon as the store is.
 */
import { type Limits, type WindowRule, windowRules } from './limit-rules.ts';
import type { RateLimitStore, RuleState, WindowCharge, WindowDecision } from './rate-limit-store.ts';

export interface RateLimitDecision {
  readonly subject: string;
  readonly admitted: boolean;
  /** The store's clock at the decision, epoch ms. */
  readonly now: number;
  /** Every window rule's state after the decision (empty when the store could not be reached). */
  readonly rules: readonly RuleState[];
  /** The tokens charged: the estimate `settle` corrects. */
  readonly tokens: number;
  /** When refused: how long until the request would fit; Infinity when it never fits. */
  readonly retryAfterMs: number | undefined;
  /** When refused: the rule that refused it (the one that frees up last). */
  readonly refusedBy: RuleState | undefined;
}

export interface RateLimiterOptions {
  onStoreError?: (error: unknown) => void;
}

export class RateLimiter {
  readonly #store: RateLimitStore;
  readonly #onStoreError: (error: unknown) => void;
  readonly #rules = new WeakMap<Limits, readonly WindowRule[]>();

  constructor(store: RateLimitStore, options: RateLimiterOptions = {}) {
    this.#store = store;
    this.#onStoreError = options.onStoreError ?? (() => {});
  }

  /** The window rules of `limits` (worked out once per limits object). */
  rulesFor(limits: Limits): readonly WindowRule[] {
    let rules = this.#rules.get(limits);
    if (rules === undefined) {
      rules = windowRules(limits);
      this.#rules.set(limits, rules);
    }
    return rules;
  }

  /** Whether `limits` has a tokens rule (so the caller knows to estimate tokens at all). */
  countsTokens(limits: Limits): boolean {
    return this.rulesFor(limits).some((rule) => rule.unit === 'tokens');
  }

  /**
   * Charges one request and `tokens` to `subject` under `limits`: admitted only
   * if every rule has room. Undefined when `limits` has no window rules.
   */
  async admit(subject: string, limits: Limits, tokens = 0): Promise<RateLimitDecision | undefined> {
    const rules = this.rulesFor(limits);
    if (rules.length === 0) return undefined;
    const cost = Math.max(0, Math.ceil(tokens));
    let decision: Awaited<ReturnType<RateLimitStore['consume']>>;
    try {
      decision = await this.#store.consume(subject, chargesOf(rules, cost));
    } catch (error) {
      this.#onStoreError(error);
      const now = Date.now();
      return {
        subject,
        admitted: true,
        now,
        rules: [],
        tokens: cost,
        retryAfterMs: undefined,
        refusedBy: undefined,
      };
    }
    return decided(subject, cost, decision);
  }

  /** Whether the store answers in the tick (in this process): `admitNow`, `refundNow` and `settleNow` may be used. */
  get inProcess(): boolean {
    return this.#store.consumeNow !== undefined && this.#store.adjustNow !== undefined;
  }

  /** `admit`, answered in the tick by an in-process store (see `inProcess`). */
  admitNow(subject: string, limits: Limits, tokens = 0): RateLimitDecision | undefined {
    const rules = this.rulesFor(limits);
    if (rules.length === 0) return undefined;
    const cost = Math.max(0, Math.ceil(tokens));
    return decided(subject, cost, this.#store.consumeNow!(subject, chargesOf(rules, cost)));
  }

  /** Gives back everything an admitted decision counted (the request went no further: another limit refused it). */
  async refund(decision: RateLimitDecision): Promise<void> {
    if (!decision.admitted) return;
    await Promise.all(
      decision.rules.map((state) =>
        this.#store.adjust(decision.subject, state.rule, decision.now, refundOf(decision, state)),
      ),
    ).catch((error: unknown) => this.#onStoreError(error));
  }

  /** `refund`, done in the tick by an in-process store. */
  refundNow(decision: RateLimitDecision): void {
    if (!decision.admitted) return;
    for (const state of decision.rules) {
      this.#store.adjustNow!(decision.subject, state.rule, decision.now, refundOf(decision, state));
    }
  }

  /** Corrects an admitted decision's tokens rules to the tokens really used. */
  async settle(decision: RateLimitDecision, usedTokens: number): Promise<void> {
    if (!decision.admitted) return;
    const delta = Math.ceil(usedTokens) - decision.tokens;
    if (delta === 0) return;
    await Promise.all(
      decision.rules
        .filter((state) => state.rule.unit === 'tokens')
        .map((state) => this.#store.adjust(decision.subject, state.rule, decision.now, delta)),
    ).catch((error: unknown) => this.#onStoreError(error));
  }

  /** `settle`, done in the tick by an in-process store. */
  settleNow(decision: RateLimitDecision, usedTokens: number): void {
    if (!decision.admitted) return;
    const delta = Math.ceil(usedTokens) - decision.tokens;
    if (delta === 0) return;
    for (const state of decision.rules) {
      if (state.rule.unit === 'tokens')
        this.#store.adjustNow!(decision.subject, state.rule, decision.now, delta);
    }
  }
}

/** What a refund takes back from a rule: the request, or its tokens. */
function refundOf(decision: RateLimitDecision, state: RuleState): number {
  return state.rule.unit === 'tokens' ? -decision.tokens : -1;
}

function chargesOf(rules: readonly WindowRule[], cost: number): WindowCharge[] {
  return rules.map((rule) => ({ rule, cost: rule.unit === 'tokens' ? cost : 1 }));
}

/** The limiter's decision from the store's: which rule refused, and how long until it would fit. */
function decided(subject: string, cost: number, decision: WindowDecision): RateLimitDecision {
  let refusedBy: RuleState | undefined;
  if (!decision.admitted) {
    for (const state of decision.rules) {
      if (state.retryAt === 0) continue;
      if (
        refusedBy === undefined ||
        state.retryAt === -1 ||
        (refusedBy.retryAt !== -1 && state.retryAt > refusedBy.retryAt)
      ) {
        refusedBy = state;
      }
    }
  }
  const retryAfterMs =
    refusedBy === undefined
      ? undefined
      : refusedBy.retryAt === -1
        ? Number.POSITIVE_INFINITY
        : Math.max(1, refusedBy.retryAt - decision.now);
  return {
    subject,
    admitted: decision.admitted,
    now: decision.now,
    rules: decision.rules,
    tokens: cost,
    retryAfterMs,
    refusedBy,
  };
}
