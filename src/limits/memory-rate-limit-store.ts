/**
 * Rate-limit windows in this process: exact for one instance, and the
 * fallback a single-node deployment runs on. The same algorithm as the Redis
 * script (src/store/lua/rate-window-consume-1.lua), over a Map per subject.
 */

import type { WindowRule } from './limit-rules.ts';
import {
  bucketField,
  bucketWidth,
  type RateLimitStore,
  type RuleState,
  type WindowCharge,
  type WindowDecision,
} from './rate-limit-store.ts';

/** A subject's counts by field (`<rule>:<bucket>`), with the time its last window ends. */
interface Subject {
  counts: Map<string, number>;
  expiresAt: number;
}

export class MemoryRateLimitStore implements RateLimitStore {
  readonly #subjects = new Map<string, Subject>();
  readonly #now: () => number;
  #sweptAt = 0;

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  async consume(subject: string, charges: readonly WindowCharge[]): Promise<WindowDecision> {
    return this.consumeNow(subject, charges);
  }

  /** `consume`, answered in this tick. */
  consumeNow(subject: string, charges: readonly WindowCharge[]): WindowDecision {
    const now = this.#now();
    this.#sweep(now);
    let state = this.#subjects.get(subject);
    const live = charges.map(() => [] as Array<[index: number, count: number]>);
    const used = charges.map(() => 0);
    if (state !== undefined) {
      for (const [field, count] of state.counts) {
        const split = field.lastIndexOf(':');
        const ruleAt = charges.findIndex((c) => c.rule.id === field.slice(0, split));
        const index = Number(field.slice(split + 1));
        const rule = charges[ruleAt]?.rule;
        if (rule !== undefined && (index + 1) * bucketWidth(rule) + rule.windowMs > now) {
          used[ruleAt]! += count;
          live[ruleAt]!.push([index, count]);
        } else {
          state.counts.delete(field);
        }
      }
    }
    const admitted = charges.every((c, i) => used[i]! + c.cost <= c.rule.limit);
    let longest = 0;
    const rules: RuleState[] = charges.map((charge, i) => {
      const { rule, cost } = charge;
      const width = bucketWidth(rule);
      if (admitted && cost > 0) {
        state ??= this.#open(subject);
        const field = bucketField(rule, now);
        state.counts.set(field, (state.counts.get(field) ?? 0) + cost);
        used[i]! += cost;
        live[i]!.push([Math.floor(now / width), cost]);
      }
      const buckets = live[i]!.sort((a, b) => a[0] - b[0]);
      const resetAt = buckets.length > 0 ? (buckets[0]![0] + 1) * width + rule.windowMs : now;
      longest = Math.max(longest, rule.windowMs + width);
      return {
        rule,
        used: used[i]!,
        resetAt,
        retryAt: admitted ? 0 : retryAt(rule, used[i]!, cost, buckets),
      };
    });
    if (state !== undefined) state.expiresAt = Math.max(state.expiresAt, now + longest);
    return { admitted, now, rules };
  }

  async adjust(subject: string, rule: WindowRule, at: number, delta: number): Promise<void> {
    const counts = this.#subjects.get(subject)?.counts;
    const field = bucketField(rule, at);
    const count = counts?.get(field);
    if (counts !== undefined && count !== undefined) counts.set(field, Math.max(0, count + delta));
  }

  #open(subject: string): Subject {
    const state: Subject = { counts: new Map(), expiresAt: 0 };
    this.#subjects.set(subject, state);
    return state;
  }

  /** Forgets subjects whose windows are all past, at most once a second (memory stays bounded by the active ones). */
  #sweep(now: number): void {
    if (now - this.#sweptAt < 1_000) return;
    this.#sweptAt = now;
    for (const [subject, state] of this.#subjects) if (state.expiresAt <= now) this.#subjects.delete(subject);
  }
}

/** When enough of the window leaves for `cost` to fit, oldest bucket first (-1: never; 0: it fits). */
function retryAt(rule: WindowRule, used: number, cost: number, buckets: Array<[number, number]>): number {
  if (used + cost <= rule.limit) return 0;
  if (cost > rule.limit) return -1;
  let left = used;
  for (const [index, count] of buckets) {
    left -= count;
    if (left + cost <= rule.limit) return (index + 1) * bucketWidth(rule) + rule.windowMs;
  }
  return -1;
}
