/**
 * The resilience metrics: breaker states (read at scrape time, nothing on the
 * request path), and counters dispatch moves for retries, fallbacks, hedges
 * and refusals by the retry budget.
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import type { BreakerState } from './breaker-store.ts';

/** `isolated` gets its own value so dashboards tell an operator's hold from an outage. */
const STATE_VALUE: Record<BreakerState, number> = { closed: 0, half_open: 1, open: 2, isolated: 3 };

export interface ResilienceMetrics {
  retries: Counter<'target' | 'reason'>;
  fallbacks: Counter<'reason'>;
  hedges: Counter<'outcome'>;
  budgetExhausted: Counter;
}

export interface ResilienceMetricsOptions {
  /** Where they are exposed; unregistered (counted, not scraped) without one. */
  registry?: Registry | undefined;
  /** Each breaker's target id and breaker, read at every scrape. */
  breakers: () => Iterable<[string, { readonly state: BreakerState }]>;
}

export function createResilienceMetrics(options: ResilienceMetricsOptions): ResilienceMetrics {
  const registers = options.registry ? [options.registry] : [];
  const { breakers } = options;
  new Gauge({
    name: 'switchyard_circuit_breaker_state',
    help: 'Circuit breaker state per target: 0 closed, 1 half-open, 2 open, 3 isolated by an operator',
    aggregator: 'max', // shared through Redis: the same on every worker
    labelNames: ['target'],
    registers,
    collect() {
      for (const [id, breaker] of breakers()) this.set({ target: id }, STATE_VALUE[breaker.state]);
    },
  });
  return {
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
