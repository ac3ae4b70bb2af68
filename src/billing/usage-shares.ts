/**
 * One upstream call's usage split between the requests that shared it
 * (embedding micro-batching): the upstream reports one total for the call,
 * and each request is billed its share, in proportion to its own weight (its
 * input's estimated tokens). Shares are whole tokens and sum exactly to the
 * total, so the ledger's rows add up to what the upstream billed: each share
 * is rounded down, and the tokens left over go one each to the largest
 * remainders (ties to the earlier request), the largest remainder method.
 */
import type { Billed, Usage } from '../core/types.ts';

/**
 * `total` split in proportion to `weights` (non-negative), in whole units
 * that sum to it exactly; equal weights when they are all zero.
 */
export function apportion(total: number, weights: readonly number[]): number[] {
  const n = weights.length;
  if (n === 0) return [];
  const whole = Math.max(0, Math.round(total));
  if (whole === 0) return new Array<number>(n).fill(0);
  let sum = 0;
  for (const w of weights) sum += w;
  // Integer arithmetic throughout: exact while total × sum stays below 2^53.
  const weightOf = sum > 0 ? (i: number) => weights[i]! : () => 1;
  const divisor = sum > 0 ? sum : n;
  const shares = new Array<number>(n);
  const remainders = new Array<number>(n);
  let given = 0;
  for (let i = 0; i < n; i++) {
    const scaled = whole * weightOf(i);
    shares[i] = Math.floor(scaled / divisor);
    remainders[i] = scaled - shares[i]! * divisor;
    given += shares[i]!;
  }
  const left = whole - given;
  if (left > 0) {
    const order = Array.from({ length: n }, (_, i) => i).sort(
      (a, b) => remainders[b]! - remainders[a]! || a - b,
    );
    for (let k = 0; k < left; k++) shares[order[k]!]!++;
  }
  return shares;
}

/** Each request's share of one call's usage (prompt, completion and total counts each split exactly). */
export function shareUsage(usage: Usage, weights: readonly number[]): Usage[] {
  const prompt = apportion(usage.prompt_tokens, weights);
  // Embeddings: no completion, total = prompt. Equal totals split equally: computed once.
  const completion = apportion(usage.completion_tokens, weights);
  const total = usage.total_tokens === usage.prompt_tokens ? prompt : apportion(usage.total_tokens, weights);
  return prompt.map((p, i) => ({
    prompt_tokens: p,
    completion_tokens: completion[i]!,
    total_tokens: total[i]!,
  }));
}

/** Each request's share of a bill (same source); nothing for anyone when there is no bill. */
export function shareBill(billed: Billed | undefined, weights: readonly number[]): (Billed | undefined)[] {
  if (billed === undefined) return weights.map(() => undefined);
  return shareUsage(billed.usage, weights).map((usage) => ({ usage, source: billed.source }));
}
