/**
 * The response cache's metrics, read from its own counters at scrape time:
 * the request path only bumps plain numbers (src/cache/response-cache.ts).
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import { LabelledHistogram } from './label-cells.ts';

/** What the cache counts (structurally ResponseCache's `stats` and `memoryUsage`). */
export interface CacheCounters {
  readonly stats: {
    readonly hits: Readonly<Record<string, number>>;
    readonly misses: number;
    readonly errors: Readonly<Record<string, number>>;
    readonly stores: number;
    readonly coalesced: number;
    readonly promptTokensSaved: number;
    readonly completionTokensSaved: number;
    readonly costMicrosSaved: number;
  };
  readonly memoryUsage: { entries: number; bytes: number };
}

/** What the semantic tier counts (structurally SemanticCache's `stats` and `size`). */
export interface SemanticCounters {
  readonly stats: { readonly lookups: number; readonly hits: number; readonly errors: number };
  readonly size: number;
}

/** Counters mirrored from the cache's own totals: set to them at each scrape. */
function mirrored<L extends string>(
  counter: Counter<L>,
  labels: Partial<Record<L, string>>,
  total: number,
): void {
  counter.reset();
  counter.inc(labels, total);
}

/** Registers the cache's metrics; returns the lookup-time histogram routes observe. */
export function registerCacheMetrics(
  registry: Registry,
  cache: CacheCounters,
  semantic?: SemanticCounters,
): LabelledHistogram<never> {
  const registers = [registry];
  if (semantic !== undefined) registerSemanticMetrics(registers, semantic);
  // The one family a dashboard needs for a hit rate: hit by the tier that answered, miss (of every tier), error by tier.
  new Counter({
    name: 'switchyard_cache_requests_total',
    help: 'Cache lookups by tier and result: hit (tier memory, redis, sql, or flight: an identical request in flight), miss (tier all), error (the tier failed)',
    labelNames: ['tier', 'result'],
    registers,
    collect() {
      this.reset();
      for (const [tier, n] of Object.entries(cache.stats.hits)) this.inc({ tier, result: 'hit' }, n);
      this.inc({ tier: 'flight', result: 'hit' }, cache.stats.coalesced);
      this.inc({ tier: 'all', result: 'miss' }, cache.stats.misses);
      for (const [tier, n] of Object.entries(cache.stats.errors)) this.inc({ tier, result: 'error' }, n);
    },
  });
  new Counter({
    name: 'switchyard_cache_hits_total',
    help: 'Requests answered from the response cache, by tier (memory, redis, sql) or from an identical request in flight',
    labelNames: ['tier'],
    registers,
    collect() {
      this.reset();
      for (const [tier, n] of Object.entries(cache.stats.hits)) this.inc({ tier }, n);
      this.inc({ tier: 'flight' }, cache.stats.coalesced);
    },
  });
  new Counter({
    name: 'switchyard_cache_misses_total',
    help: 'Cache lookups that found nothing in any tier',
    registers,
    collect() {
      mirrored(this, {}, cache.stats.misses);
    },
  });
  new Counter({
    name: 'switchyard_cache_errors_total',
    help: 'Cache lookups or writes a tier failed (the request went on without it)',
    labelNames: ['tier'],
    registers,
    collect() {
      this.reset();
      for (const [tier, n] of Object.entries(cache.stats.errors)) this.inc({ tier }, n);
    },
  });
  new Counter({
    name: 'switchyard_cache_stores_total',
    help: 'Answers stored in the cache',
    registers,
    collect() {
      mirrored(this, {}, cache.stats.stores);
    },
  });
  new Counter({
    name: 'switchyard_cache_tokens_saved_total',
    help: 'Upstream tokens not spent thanks to cache hits, by kind',
    labelNames: ['kind'],
    registers,
    collect() {
      this.reset();
      this.inc({ kind: 'prompt' }, cache.stats.promptTokensSaved);
      this.inc({ kind: 'completion' }, cache.stats.completionTokensSaved);
    },
  });
  new Counter({
    name: 'switchyard_cache_usd_saved_total',
    help: 'What the answers served from the cache cost when they were computed, in USD (unknown costs count 0)',
    registers,
    collect() {
      mirrored(this, {}, cache.stats.costMicrosSaved / 1_000_000);
    },
  });
  new Gauge({
    name: 'switchyard_cache_memory_entries',
    help: 'Entries in the in-process cache tier',
    registers,
    collect() {
      this.set(cache.memoryUsage.entries);
    },
  });
  new Gauge({
    name: 'switchyard_cache_memory_bytes',
    help: 'Bytes held by the in-process cache tier',
    registers,
    collect() {
      this.set(cache.memoryUsage.bytes);
    },
  });
  // Observed on every cached request: cells (label-cells.ts), not prom-client's per-call work.
  return new LabelledHistogram({
    name: 'switchyard_cache_lookup_seconds',
    help: 'Time to look a request up in the cache (every tier, and any wait for an identical request in flight)',
    labelNames: [],
    buckets: [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25, 1],
    registers,
  });
}

/**
 * The semantic tier's own counts. A semantic hit also counts as a miss of the
 * exact lookup before it and a hit of the tier that held the answer.
 */
function registerSemanticMetrics(registers: Registry[], semantic: SemanticCounters): void {
  new Counter({
    name: 'switchyard_cache_semantic_lookups_total',
    help: 'Semantic cache lookups (after an exact miss), by result: hit, miss, or error (the embedder failed)',
    labelNames: ['result'],
    registers,
    collect() {
      this.reset();
      const { lookups, hits, errors } = semantic.stats;
      this.inc({ result: 'hit' }, hits);
      this.inc({ result: 'miss' }, lookups - hits);
      this.inc({ result: 'error' }, errors);
    },
  });
  new Gauge({
    name: 'switchyard_cache_semantic_entries',
    help: "Prompts in this instance's semantic index",
    registers,
    collect() {
      this.set(semantic.size);
    },
  });
}
