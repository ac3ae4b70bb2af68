/**
 * `complexity`: scores the request (see complexity-score.ts for the
 * heuristic), maps the score to a tier with the model's thresholds, and tries
 * the targets of that tier first. Fallbacks go up a size before down (a
 * bigger model can do a small job; a smaller one may fail a big one); targets
 * with no tier come last. Score and tier go to the client as
 * `x-switchyard-complexity` / `x-switchyard-tier` and to the request log.
 */

import { complexityScore, tierOf } from '../complexity-score.ts';
import type { ComplexityTier, RouteEntry } from '../model-table.ts';
import type { RoutingStrategy, StrategyContext } from './types.ts';

const PREFERENCE: Record<ComplexityTier, readonly ComplexityTier[]> = {
  small: ['small', 'medium', 'large'],
  medium: ['medium', 'large', 'small'],
  large: ['large', 'medium', 'small'],
};

export const complexityStrategy: RoutingStrategy = {
  name: 'complexity',
  order(entries: readonly RouteEntry[], ctx: StrategyContext): readonly RouteEntry[] {
    const score = complexityScore(ctx.request);
    const tier = tierOf(score, ctx.complexity);
    ctx.headers = { 'x-switchyard-complexity': String(score), 'x-switchyard-tier': tier };
    ctx.log = { complexity: score, tier };
    const out: RouteEntry[] = [];
    for (const wanted of PREFERENCE[tier]) {
      for (const entry of entries) if (entry.tier === wanted) out.push(entry);
    }
    for (const entry of entries) if (entry.tier === undefined) out.push(entry);
    return out;
  },
};
