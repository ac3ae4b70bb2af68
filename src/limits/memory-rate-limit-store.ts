/**
 * Rate-limit windows in this process: exact for one instance, and the
 * fallback a single-node deployment runs on. The same algorithm as the Redis
 * script (src/store/lua/rate-window-consume-1.lua), over a Map per subject.
 */

import type { WindowRule } from './limit-rules.ts';
import {
  bucketWidth,
  type RateLimitStore,
  type RuleState,
  type WindowCharge,
  type WindowDecision,
} from './rate-limit-store.ts';

/**
 * A rule's live buckets: bucket indexes ascending (time order), with their
 * counts. Arrays rather than `<rule>:<bucket>` fields: a decision reads them
 * without parsing or sorting, and expired buckets leave from the front.
 */
interface RuleCounts {
  buckets: number[];
  counts: number[];
}

/** A subject's counts by rule id, with the time its last window ends. */
interface Subject {
  rules: Map<string, RuleCounts>;
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
    if (state !== undefined) forgetOtherRules(state, charges);
    const live: Array<RuleCounts | undefined> = [];
    const used: number[] = [];
    let admitted = true;
    for (const { rule, cost } of charges) {
      const counts = state?.rules.get(rule.id);
      let sum = 0;
      if (counts !== undefined) {
        dropExpired(counts, rule, now);
        for (const count of counts.counts) sum += count;
      }
      live.push(counts);
      used.push(sum);
      if (sum + cost > rule.limit) admitted = false;
    }
    let longest = 0;
    const rules: RuleState[] = [];
    for (let i = 0; i < charges.length; i++) {
      const { rule, cost } = charges[i]!;
      const width = bucketWidth(rule);
      let counts = live[i];
      if (admitted && cost > 0) {
        state ??= this.#open(subject);
        if (counts === undefined) {
          counts = { buckets: [], counts: [] };
          state.rules.set(rule.id, counts);
        }
        add(counts, Math.floor(now / width), cost);
        used[i]! += cost;
      }
      const oldest = counts?.buckets[0];
      longest = Math.max(longest, rule.windowMs + width);
      rules.push({
        rule,
        used: used[i]!,
        resetAt: oldest === undefined ? now : (oldest + 1) * width + rule.windowMs,
        retryAt: admitted ? 0 : retryAt(rule, used[i]!, cost, counts),
      });
    }
    if (state !== undefined) state.expiresAt = Math.max(state.expiresAt, now + longest);
    return { admitted, now, rules };
  }

  async adjust(subject: string, rule: WindowRule, at: number, delta: number): Promise<void> {
    this.adjustNow(subject, rule, at, delta);
  }

  /** `adjust`, done in this tick. */
  adjustNow(subject: string, rule: WindowRule, at: number, delta: number): void {
    const counts = this.#subjects.get(subject)?.rules.get(rule.id);
    if (counts === undefined) return;
    const slot = counts.buckets.indexOf(Math.floor(at / bucketWidth(rule)));
    if (slot >= 0) counts.counts[slot] = Math.max(0, counts.counts[slot]! + delta);
  }

  #open(subject: string): Subject {
    const state: Subject = { rules: new Map(), expiresAt: 0 };
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

/** Counts of rules the caller no longer passes are forgotten (a changed limit stops counting under its old name). */
function forgetOtherRules(state: Subject, charges: readonly WindowCharge[]): void {
  if (state.rules.size === 0) return;
  let passed = 0;
  for (const { rule } of charges) if (state.rules.has(rule.id)) passed++;
  if (passed === state.rules.size) return;
  for (const id of state.rules.keys()) if (!charges.some((c) => c.rule.id === id)) state.rules.delete(id);
}

/** Drops the buckets that have left the rule's window by `now` (the oldest are first). */
function dropExpired(counts: RuleCounts, rule: WindowRule, now: number): void {
  const width = bucketWidth(rule);
  let gone = 0;
  while (gone < counts.buckets.length && (counts.buckets[gone]! + 1) * width + rule.windowMs <= now) gone++;
  if (gone > 0) {
    counts.buckets.splice(0, gone);
    counts.counts.splice(0, gone);
  }
}

/** Adds `cost` to bucket `index`, keeping the indexes ascending (a clock that stepped back lands in its place). */
function add(counts: RuleCounts, index: number, cost: number): void {
  let at = counts.buckets.length - 1;
  while (at >= 0 && counts.buckets[at]! > index) at--;
  if (at >= 0 && counts.buckets[at] === index) counts.counts[at]! += cost;
  else {
    counts.buckets.splice(at + 1, 0, index);
    counts.counts.splice(at + 1, 0, cost);
  }
}

/** When enough of the window leaves for `cost` to fit, oldest bucket first (-1: never; 0: it fits). */
function retryAt(rule: WindowRule, used: number, cost: number, counts: RuleCounts | undefined): number {
  if (used + cost <= rule.limit) return 0;
  if (cost > rule.limit || counts === undefined) return -1;
  let left = used;
  for (let i = 0; i < counts.buckets.length; i++) {
    left -= counts.counts[i]!;
    if (left + cost <= rule.limit) return (counts.buckets[i]! + 1) * bucketWidth(rule) + rule.windowMs;
  }
  return -1;
}
