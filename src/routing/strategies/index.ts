/** The built-in strategies by their config name (`models.<name>.strategy`). */
import { complexityStrategy } from './complexity.ts';
import { costStrategy } from './cost.ts';
import { fallbackStrategy } from './fallback.ts';
import { leastLatencyStrategy } from './least-latency.ts';
import type { RoutingStrategy } from './types.ts';
import { weightedStrategy } from './weighted.ts';

export const STRATEGIES: Readonly<Record<string, RoutingStrategy>> = {
  fallback: fallbackStrategy,
  weighted: weightedStrategy,
  'least-latency': leastLatencyStrategy,
  cost: costStrategy,
  complexity: complexityStrategy,
};

export type { RoutingStrategy, StrategyContext } from './types.ts';
export { complexityStrategy, costStrategy, fallbackStrategy, leastLatencyStrategy, weightedStrategy };
