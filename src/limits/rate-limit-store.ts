/**
 * Where rate-limit windows are counted: in this process (one instance) or in
 * Redis (every instance counts in the same windows). Both keep a window as
 * sub-window buckets and decide the same way (test/conformance holds both to
 * it); the Redis one is one script call per decision.
 *
 * A decision charges every rule of one subject at once: all have room and all
 * are counted, or none is. Callers pass all of a subject's rules on every
 * call: counts of rules not passed are forgotten (that is how a changed limit
 * stops counting under its old name).
 */
import type { WindowRule } from './limit-rules.ts';

/** Sub-windows per window: a bucket outstays the window by at most 1/20 of it, never undercounts. */
export const WINDOW_BUCKETS = 20;

export interface WindowCharge {
  readonly rule: WindowRule;
  /** Units this request takes (1 request; its estimated tokens). */
  readonly cost: number;
}

export interface RuleState {
  readonly rule: WindowRule;
  /** What the window holds, this request's cost included when it was admitted. */
  readonly used: number;
  /** When the oldest admitted unit leaves the window (`now` when it is empty), epoch ms. */
  readonly resetAt: number;
  /** When this request would fit, if this rule refused it; 0 when it fits; -1 never (cost above the limit). */
  readonly retryAt: number;
}

export interface WindowDecision {
  readonly admitted: boolean;
  /** The store's clock at the decision (Redis's own for the shared store), epoch ms. */
  readonly now: number;
  readonly rules: readonly RuleState[];
}

export interface RateLimitStore {
  /** Admits `charges` against `subject`'s windows if every rule has room, counting them all; else counts nothing. */
  consume(subject: string, charges: readonly WindowCharge[]): Promise<WindowDecision>;
  /** Corrects the count a decision at `at` made for `rule` by `delta` units (real usage minus the estimate). */
  adjust(subject: string, rule: WindowRule, at: number, delta: number): Promise<void>;
  /** `consume` and `adjust` answered in the tick, by a store in this process (no promise, nothing to await). */
  consumeNow?(subject: string, charges: readonly WindowCharge[]): WindowDecision;
  adjustNow?(subject: string, rule: WindowRule, at: number, delta: number): void;
}

/** The bucket a rule counts time `at` in, and the field naming it. */
export function bucketField(rule: WindowRule, at: number): string {
  return `${rule.id}:${Math.floor(at / bucketWidth(rule))}`;
}

export function bucketWidth(rule: WindowRule): number {
  return Math.max(1, Math.floor(rule.windowMs / WINDOW_BUCKETS));
}
