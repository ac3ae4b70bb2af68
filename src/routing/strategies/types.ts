/**
 * The strategy contract: given a model's eligible entries (targets or nested
 * groups), return them in the order to try. Strategies own order only;
 * conditions, deactivation, capacity shedding and roles are applied by the
 * Router around them, so every strategy gets those for free.
 *
 * `order` runs on every request: no I/O, and allocate at most the result.
 */
import type { ChatRequest, EmbeddingRequest } from '../../core/types.ts';
import type { RandomSource } from '../../util/random.ts';
import type { ComplexityPolicy } from '../complexity/safety-valve.ts';
import type { LatencyTracker } from '../latency.ts';
import type { RouteEntry } from '../model-table.ts';
import type { RequestFeatures } from '../request-features.ts';

export interface StrategyContext {
  readonly request: ChatRequest | EmbeddingRequest;
  readonly random: RandomSource;
  readonly latency: LatencyTracker;
  /** Read lazily (and once) by strategies that need the request's size and needs. */
  features(): RequestFeatures;
  /** The model's complexity thresholds, classifiers and safety valve (for `complexity`). */
  readonly complexity: ComplexityPolicy;
  /** The calling key's tier (for per-tier floors), null when it has none. */
  readonly keyTier: string | null;
  /** Response headers describing the decision (set by strategies that have something to say). */
  headers: Record<string, string> | undefined;
  /** Fields for the request's log line. */
  log: Record<string, unknown> | undefined;
}

export interface RoutingStrategy {
  readonly name: string;
  /** May return `entries` itself when the order is unchanged; never mutates it. */
  order(entries: readonly RouteEntry[], ctx: StrategyContext): readonly RouteEntry[];
}
