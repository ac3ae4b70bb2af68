/**
 * `complexity`: classifies the request (the built-in heuristic, see
 * complexity-score.ts, or the classifiers configured per model), lets the
 * safety valve round an uncertain verdict up and apply the key tier's floor
 * (complexity/safety-valve.ts), and tries the targets of the resulting tier
 * first. Fallbacks go up a size before down (a bigger model can do a small
 * job; a smaller one may fail a big one); targets with no tier come last.
 *
 * The decision goes to the client as headers (`x-switchyard-tier`, the
 * tier served; `x-switchyard-complexity`, the score; `-confidence`,
 * `-classifier`, and `-raised` with the reason when the valve moved it up)
 * and to the request's log line under `routing`.
 */

import { decideComplexity } from '../complexity/safety-valve.ts';
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
    const decision = decideComplexity(ctx.request, ctx.keyTier, ctx.complexity);
    const tier = decision.tier;
    ctx.headers = {
      'x-switchyard-complexity': String(decision.score),
      'x-switchyard-tier': tier,
      'x-switchyard-complexity-confidence': String(decision.confidence),
      'x-switchyard-complexity-classifier': decision.classifier,
    };
    ctx.log = {
      complexity: decision.score,
      tier,
      confidence: decision.confidence,
      classifier: decision.classifier,
      ...decision.log,
    };
    if (decision.raised !== undefined) {
      ctx.headers['x-switchyard-complexity-raised'] = `${decision.raised}:${decision.classified}`;
      ctx.log['classified_tier'] = decision.classified;
      ctx.log['raised'] = decision.raised;
    }
    const out: RouteEntry[] = [];
    for (const wanted of PREFERENCE[tier]) {
      for (const entry of entries) if (entry.tier === wanted) out.push(entry);
    }
    for (const entry of entries) if (entry.tier === undefined) out.push(entry);
    return out;
  },
};
