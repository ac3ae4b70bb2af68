/**
 * `cost`: the cheapest target that can serve the request first, the others
 * after it by expected price.
 *
 * Expected price = estimated prompt tokens × input price + requested
 * `max_tokens` (or a typical answer when unset) × output price. Targets whose
 * declared capabilities cannot serve the request (tools, images, JSON mode,
 * context window) go last, and the Router then removes them; a group is priced at its cheapest capable
 * member. Targets with no known price go last, in config order.
 */

import { expectedOutputTokens, unmetNeed } from '../capabilities.ts';
import type { RouteEntry } from '../model-table.ts';
import { expectedCost } from '../pricing.ts';
import type { RoutingStrategy, StrategyContext } from './types.ts';

export const costStrategy: RoutingStrategy = {
  name: 'cost',
  order(entries: readonly RouteEntry[], ctx: StrategyContext): readonly RouteEntry[] {
    const features = ctx.features();
    const output = expectedOutputTokens(features);
    const capable: RouteEntry[] = [];
    const incapable: RouteEntry[] = [];
    const costs: number[] = [];
    for (const entry of entries) {
      let best = Number.NaN;
      for (const target of entry.leaves) {
        if (unmetNeed(target, features) !== undefined) continue;
        const cost = expectedCost(target.price, features.promptTokens, output);
        if (!(cost >= best)) best = cost;
      }
      if (Number.isNaN(best)) {
        incapable.push(entry);
        continue;
      }
      capable.push(entry);
      costs.push(best);
    }
    const index = capable.map((_, i) => i);
    // Stable: equal prices (and unknown ones, all Infinity) keep config order.
    index.sort((a, b) => (costs[a] === costs[b] ? a - b : costs[a]! < costs[b]! ? -1 : 1));
    const out = index.map((i) => capable[i]!);
    // Left at the end for the Router, which removes them and can say why if nothing is left.
    for (const entry of incapable) out.push(entry);
    return out;
  },
};
