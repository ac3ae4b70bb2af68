/**
 * The gateway's resilience state, built once from config: one circuit
 * breaker and one latency sketch per target, the shared retry budget, and
 * the metrics that expose them. Dispatch reads it per attempt; health and
 * admin routes read and reset it.
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import type { Config } from '../config/schema.ts';
import type { ModelRoute, RouteTarget } from '../routing/model-table.ts';
import type { BreakerState, BreakerStore } from './breaker-store.ts';
import { MemoryBreakerStore } from './breaker-store.ts';
import { CircuitBreaker } from './circuit-breaker.ts';
import { LatencySketch } from './hedge.ts';
import { RetryBudget } from './retry.ts';

/** `isolated` gets its own value so dashboards tell an operator's hold from an outage. */
const STATE_VALUE: Record<BreakerState, number> = { closed: 0, half_open: 1, open: 2, isolated: 3 };

export interface ResilienceMetrics {
  retries: Counter<'target' | 'reason'>;
  fallbacks: Counter<'reason'>;
  hedges: Counter<'outcome'>;
  budgetExhausted: Counter;
}

export interface ResilienceOptions {
  store?: BreakerStore;
  registry?: Registry;
  clock?: () => number;
}

export class Resilience {
  readonly budget: RetryBudget;
  readonly store: BreakerStore;
  readonly metrics: ResilienceMetrics;
  readonly #breakers = new Map<string, CircuitBreaker>();
  readonly #sketches = new Map<string, LatencySketch>();
  /** Targets by id, for health and admin listings. */
  readonly targets = new Map<string, RouteTarget>();

  constructor(config: Config, models: Map<string, ModelRoute>, options: ResilienceOptions = {}) {
    const clock = options.clock ?? Date.now;
    this.store = options.store ?? new MemoryBreakerStore(clock);
    this.budget = new RetryBudget({
      ratio: config.resilience.retry_budget_ratio,
      minConcurrent: config.resilience.retry_budget_min_concurrent,
    });
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
            store: this.store,
          }),
        );
      }
    }
    const registers = options.registry ? [options.registry] : [];
    const breakers = this.#breakers;
    new Gauge({
      name: 'switchyard_circuit_breaker_state',
      help: 'Circuit breaker state per target: 0 closed, 1 half-open, 2 open, 3 isolated by an operator',
      labelNames: ['target'],
      registers,
      collect() {
        for (const [id, breaker] of breakers) this.set({ target: id }, STATE_VALUE[breaker.state]);
      },
    });
    this.metrics = {
      retries: new Counter({
        name: 'switchyard_retries_total',
        help: 'Retries of an attempt on the same target, by error code',
        labelNames: ['target', 'reason'],
        registers,
      }),
      fallbacks: new Counter({
        name: 'switchyard_fallbacks_total',
        help: 'Requests moved on to a further target, by reason',
        labelNames: ['reason'],
        registers,
      }),
      hedges: new Counter({
        name: 'switchyard_hedges_total',
        help: 'Hedged attempts launched, by outcome (won, lost, failed)',
        labelNames: ['outcome'],
        registers,
      }),
      budgetExhausted: new Counter({
        name: 'switchyard_retry_budget_exhausted_total',
        help: 'Retries or fallbacks refused because the retry budget was empty',
        registers,
      }),
    };
  }

  breaker(targetId: string): CircuitBreaker | undefined {
    return this.#breakers.get(targetId);
  }

  sketch(targetId: string): LatencySketch {
    let sketch = this.#sketches.get(targetId);
    if (!sketch) {
      sketch = new LatencySketch();
      this.#sketches.set(targetId, sketch);
    }
    return sketch;
  }

  /** Every target with its breaker state (targets without a breaker are always closed). */
  list(): Array<{
    id: string;
    provider: string;
    model: string;
    state: BreakerState;
    retry_after_ms: number;
  }> {
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

  async close(): Promise<void> {
    for (const breaker of this.#breakers.values()) breaker.dispose();
    await this.store.close();
  }
}
