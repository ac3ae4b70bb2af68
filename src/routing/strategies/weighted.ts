/**
 * `weighted`: the first target is drawn at random in proportion to `weight`
 * (80/20 sends ~80% of first attempts to the first); the others follow as
 * fallbacks, heaviest first.
 */
import type { RouteEntry } from '../model-table.ts';
import type { RoutingStrategy, StrategyContext } from './types.ts';

// Entry lists are stable arrays built at start, so their weight order is computed once.
const byWeightCache = new WeakMap<readonly RouteEntry[], RouteEntry[]>();

function byWeight(entries: readonly RouteEntry[]): RouteEntry[] {
  let sorted = byWeightCache.get(entries);
  if (!sorted) {
    sorted = [...entries].sort((a, b) => b.weight - a.weight);
    byWeightCache.set(entries, sorted);
  }
  return sorted;
}

export const weightedStrategy: RoutingStrategy = {
  name: 'weighted',
  order(entries: readonly RouteEntry[], ctx: StrategyContext): readonly RouteEntry[] {
    if (entries.length < 2) return entries;
    let total = 0;
    for (const entry of entries) total += entry.weight;
    let point = ctx.random() * total;
    let chosen = entries[entries.length - 1]!;
    for (const entry of entries) {
      point -= entry.weight;
      if (point < 0) {
        chosen = entry;
        break;
      }
    }
    const out: RouteEntry[] = [chosen];
    for (const entry of byWeight(entries)) if (entry !== chosen) out.push(entry);
    return out;
  },
};
