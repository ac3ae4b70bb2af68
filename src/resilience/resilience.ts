/**
 * The gateway's resilience state, built once from config: a facade over the
 * breaker registry (one breaker per target, breaker-registry.ts), the latency
 * sketches (latency-sketches.ts), the fleet-wide retry budget and the
 * resilience metrics (resilience-metrics.ts). Dispatch reads it per attempt;
 * health and admin routes read and reset it. Each part has its own module;
 * this one only builds them and keeps the surface other code uses.
 */
import type { Registry } from 'prom-client';
import type { Config } from '../config/schema.ts';
import type { ModelRoute, RouteTarget } from '../routing/model-table.ts';
import { type BreakerListing, BreakerRegistry } from './breaker-registry.ts';
import { type BreakerStore, MemoryBreakerStore } from './breaker-store.ts';
import type { CircuitBreaker } from './circuit-breaker.ts';
import type { LatencySketch } from './hedge.ts';
import { LatencySketches } from './latency-sketches.ts';
import { createResilienceMetrics, type ResilienceMetrics } from './resilience-metrics.ts';
import { RetryBudget } from './retry.ts';

export type { BreakerListing } from './breaker-registry.ts';
export type { ResilienceMetrics } from './resilience-metrics.ts';

export interface ResilienceOptions {
  /** Where breakers share state (Redis for a fleet); a private in-memory store by default. */
  store?: BreakerStore;
  registry?: Registry;
  clock?: () => number;
}

export class Resilience {
  readonly budget: RetryBudget;
  readonly store: BreakerStore;
  readonly metrics: ResilienceMetrics;
  readonly #breakers: BreakerRegistry;
  readonly #sketches = new LatencySketches();

  constructor(config: Config, models: Map<string, ModelRoute>, options: ResilienceOptions = {}) {
    const clock = options.clock ?? Date.now;
    this.store = options.store ?? new MemoryBreakerStore(clock);
    this.budget = new RetryBudget({
      ratio: config.resilience.retry_budget_ratio,
      minConcurrent: config.resilience.retry_budget_min_concurrent,
    });
    const breakers = new BreakerRegistry(models, { store: this.store, clock });
    this.#breakers = breakers;
    this.metrics = createResilienceMetrics({
      registry: options.registry,
      breakers: () => breakers.breakers(),
    });
  }

  /** Targets by id, for health and admin listings. */
  get targets(): ReadonlyMap<string, RouteTarget> {
    return this.#breakers.targets;
  }

  breaker(targetId: string): CircuitBreaker | undefined {
    return this.#breakers.get(targetId);
  }

  sketch(targetId: string): LatencySketch {
    return this.#sketches.get(targetId);
  }

  /** Every target with its breaker state (targets without a breaker are always closed). */
  list(): BreakerListing[] {
    return this.#breakers.list();
  }

  /** True when some target of some model could take a request now. */
  anyTargetAvailable(): boolean {
    return this.#breakers.anyTargetAvailable();
  }

  /** Adopts breaker states shared by other instances (open or isolated before this one started). */
  sync(): Promise<void> {
    return this.#breakers.sync();
  }

  async close(): Promise<void> {
    this.#breakers.dispose();
    await this.store.close();
  }
}
