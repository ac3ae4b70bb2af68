/**
 * One circuit breaker per upstream target, built once from the model table,
 * and the views health and admin routes take of them: the listing, whether
 * any target could take a request, and adopting states other instances
 * shared before this one started.
 */
import type { ModelRoute, RouteTarget } from '../routing/model-table.ts';
import type { BreakerState, BreakerStore } from './breaker-store.ts';
import { CircuitBreaker } from './circuit-breaker.ts';

/** One line of `GET /admin/breakers` and of `/health/deep`'s targets. */
export interface BreakerListing {
  id: string;
  provider: string;
  model: string;
  state: BreakerState;
  retry_after_ms: number;
}

export interface BreakerRegistryOptions {
  /** Where the breakers share their state (every breaker of the registry uses it). */
  store: BreakerStore;
  clock?: () => number;
}

export class BreakerRegistry {
  /** Every upstream target by id, breaker or not. */
  readonly targets = new Map<string, RouteTarget>();
  readonly #breakers = new Map<string, CircuitBreaker>();

  constructor(models: Map<string, ModelRoute>, options: BreakerRegistryOptions) {
    const clock = options.clock ?? Date.now;
    for (const route of models.values()) {
      const cb = route.config.circuit_breaker;
      for (const target of route.targets) {
        // A target shared by several models has one breaker: the first model's settings win.
        if (this.targets.has(target.id)) continue;
        this.targets.set(target.id, target);
        if (!cb.enabled) continue;
        this.#breakers.set(
          target.id,
          new CircuitBreaker({
            id: target.id,
            failureThreshold: cb.failure_threshold,
            failureRate: cb.failure_rate,
            windowMs: cb.window_ms,
            minRequests: cb.min_requests,
            recoveryTimeoutMs: cb.recovery_timeout_ms,
            halfOpenMaxProbes: cb.half_open_max_probes,
            successThreshold: cb.success_threshold,
            // A probe can take as long as one attempt and no longer: then its permit lapses on
            // every instance, even if its holder hung or died (no stuck half-open).
            probeTtlMs: route.timeouts.totalMs,
            clock,
            store: options.store,
          }),
        );
      }
    }
  }

  /** The target's breaker; undefined when its model disabled breakers. */
  get(targetId: string): CircuitBreaker | undefined {
    return this.#breakers.get(targetId);
  }

  /** Every breaker with its target id (metrics read their states). */
  breakers(): IterableIterator<[string, CircuitBreaker]> {
    return this.#breakers.entries();
  }

  /** Every target with its breaker state (targets without a breaker are always closed). */
  list(): BreakerListing[] {
    return [...this.targets.values()].map((t) => {
      const breaker = this.#breakers.get(t.id);
      return {
        id: t.id,
        provider: t.provider.name,
        model: t.model,
        state: breaker?.state ?? 'closed',
        retry_after_ms: breaker?.retryAfterMs ?? 0,
      };
    });
  }

  /** True when some target of some model could take a request now. */
  anyTargetAvailable(): boolean {
    if (this.targets.size === 0) return true;
    for (const id of this.targets.keys()) {
      const state = this.#breakers.get(id)?.state;
      if (state !== 'open' && state !== 'isolated') return true;
    }
    return false;
  }

  /** Adopts breaker states shared by other instances (open or isolated before this one started). */
  async sync(): Promise<void> {
    await Promise.all([...this.#breakers.values()].map((breaker) => breaker.sync()));
  }

  /** Stops every breaker listening to the store (the store itself is its owner's to close). */
  dispose(): void {
    for (const breaker of this.#breakers.values()) breaker.dispose();
  }
}
