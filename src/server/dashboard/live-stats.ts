/**
 * The dashboard's live numbers, read from the gateway's metrics registry:
 * the registry's counters and histograms are cumulative, so this keeps a
 * short ring of their totals (one sample a second at most, taken only while
 * someone polls: no timer runs when nobody watches) and answers rates and
 * percentiles from the differences between samples.
 *
 * Only model traffic counts (routes under /v1/): the dashboard's own polling,
 * health probes and admin calls are not what an operator means by "requests".
 * Metric names this reads are listed once below; a metric that is absent
 * (no cache configured, say) reads as zero.
 */
import type { Registry } from 'prom-client';

/** Samples closer together than this are one sample: many viewers cost one read a second. */
const MIN_SAMPLE_SPACING_MS = 900;
/** Five minutes of history at one sample a second. */
const MAX_SAMPLES = 300;
/** The window the headline rates are measured over. */
const RATE_WINDOW_MS = 5_000;
/** The window the headline percentiles are measured over (they need more events than a rate). */
const PERCENTILE_WINDOW_MS = 60_000;
/** The trailing window each chart point's percentiles cover. */
const POINT_PERCENTILE_WINDOW_MS = 10_000;

const METRICS = {
  requests: 'switchyard_requests_total',
  duration: 'switchyard_request_duration_seconds',
  ttft: 'switchyard_time_to_first_token_seconds',
  tokens: 'switchyard_tokens_total',
  inFlight: 'switchyard_requests_in_flight',
  /** The name the metrics issue asks for, and the one before it. */
  cacheRequests: 'switchyard_cache_requests_total',
  cacheHits: 'switchyard_cache_hits_total',
  cacheMisses: 'switchyard_cache_misses_total',
  spend: ['switchyard_cost_usd_total', 'switchyard_spend_usd_total'],
} as const;

/** Cumulative bucket counts by upper bound (Infinity last). */
export interface Buckets {
  bounds: number[];
  counts: number[];
}

export interface Totals {
  at: number;
  requests: number;
  /** Answers with a 5xx status. */
  serverErrors: number;
  /** Answers with a 4xx status (refusals: bad input, auth, limits). */
  clientErrors: number;
  latency: Buckets;
  ttft: Buckets;
  cacheHits: number;
  cacheMisses: number;
  tokens: number;
  spendUsd: number;
  inFlight: number;
}

export interface LivePoint {
  t: number;
  rps: number;
  error_rate: number | null;
  p50_ms: number | null;
  p95_ms: number | null;
  p99_ms: number | null;
  ttft_p50_ms: number | null;
  ttft_p95_ms: number | null;
  cache_hit_rate: number | null;
  tokens_per_s: number;
  spend_usd_per_min: number;
}

export interface LiveView {
  at: number;
  /** Headline numbers: rates over the last 5 s, percentiles over the last 60 s. */
  current: LivePoint & {
    in_flight: number;
    client_error_rate: number | null;
    requests_total: number;
    spend_usd_total: number;
  };
  /** One point a sample, oldest first (up to five minutes). */
  series: LivePoint[];
}

interface MetricValue {
  value: number;
  metricName?: string;
  labels: Record<string, string | number | undefined>;
}

export class LiveStats {
  readonly #registry: Registry;
  readonly #now: () => number;
  readonly #samples: Totals[] = [];
  #pending: Promise<Totals> | undefined;

  constructor(registry: Registry, now: () => number = Date.now) {
    this.#registry = registry;
    this.#now = now;
  }

  /** Takes a sample (unless one was just taken) and answers the view over the ring. */
  async view(): Promise<LiveView> {
    const latest = await this.#sample();
    const samples = this.#samples;
    const series: LivePoint[] = [];
    for (let i = 1; i < samples.length; i++) {
      series.push(point(samples[i - 1]!, samples[i]!, before(samples, i, POINT_PERCENTILE_WINDOW_MS)));
    }
    const rateBase = before(samples, samples.length - 1, RATE_WINDOW_MS);
    const percentileBase = before(samples, samples.length - 1, PERCENTILE_WINDOW_MS);
    const headline = point(rateBase, latest, percentileBase);
    const requests = latest.requests - rateBase.requests;
    return {
      at: latest.at,
      current: {
        ...headline,
        in_flight: latest.inFlight,
        client_error_rate: requests > 0 ? (latest.clientErrors - rateBase.clientErrors) / requests : null,
        requests_total: latest.requests,
        spend_usd_total: latest.spendUsd,
      },
      series,
    };
  }

  async #sample(): Promise<Totals> {
    const last = this.#samples.at(-1);
    if (last !== undefined && this.#now() - last.at < MIN_SAMPLE_SPACING_MS) return last;
    // Concurrent viewers share one read.
    this.#pending ??= this.#read().finally(() => {
      this.#pending = undefined;
    });
    const totals = await this.#pending;
    if (this.#samples.at(-1) !== totals) {
      this.#samples.push(totals);
      if (this.#samples.length > MAX_SAMPLES) this.#samples.shift();
    }
    return totals;
  }

  async #read(): Promise<Totals> {
    const [requests, duration, ttft, tokens, inFlight, cacheRequests, cacheHits, cacheMisses, spend] =
      await Promise.all([
        this.#values(METRICS.requests),
        this.#values(METRICS.duration),
        this.#values(METRICS.ttft),
        this.#values(METRICS.tokens),
        this.#values(METRICS.inFlight),
        this.#values(METRICS.cacheRequests),
        this.#values(METRICS.cacheHits),
        this.#values(METRICS.cacheMisses),
        this.#firstPresent(METRICS.spend),
      ]);
    const totals: Totals = {
      at: this.#now(),
      requests: 0,
      serverErrors: 0,
      clientErrors: 0,
      latency: buckets(duration.filter(isModelTraffic)),
      ttft: buckets(ttft),
      cacheHits: 0,
      cacheMisses: 0,
      tokens: 0,
      spendUsd: sum(spend),
      inFlight: sum(inFlight.filter(isModelTraffic)),
    };
    for (const v of requests) {
      if (!isModelTraffic(v)) continue;
      totals.requests += v.value;
      const status = Number(v.labels['status']);
      if (status >= 500) totals.serverErrors += v.value;
      else if (status >= 400) totals.clientErrors += v.value;
    }
    for (const v of tokens) {
      // Cached prompt tokens are a part of the prompt tokens, not more of them.
      if ((v.labels['kind'] ?? v.labels['type']) !== 'cached') totals.tokens += v.value;
    }
    if (cacheRequests.length > 0) {
      for (const v of cacheRequests) {
        if (v.labels['result'] === 'hit') totals.cacheHits += v.value;
        else if (v.labels['result'] === 'miss') totals.cacheMisses += v.value;
      }
    } else {
      totals.cacheHits = sum(cacheHits);
      totals.cacheMisses = sum(cacheMisses);
    }
    return totals;
  }

  async #values(name: string): Promise<MetricValue[]> {
    const metric = this.#registry.getSingleMetric(name);
    if (metric === undefined) return [];
    return (await metric.get()).values as MetricValue[];
  }

  async #firstPresent(names: readonly string[]): Promise<MetricValue[]> {
    for (const name of names) {
      if (this.#registry.getSingleMetric(name) !== undefined) return this.#values(name);
    }
    return [];
  }
}

function isModelTraffic(v: MetricValue): boolean {
  const route = v.labels['route'];
  return typeof route === 'string' && route.startsWith('/v1/');
}

function sum(values: MetricValue[]): number {
  let total = 0;
  for (const v of values) total += v.value;
  return total;
}

/** A histogram's `_bucket` values summed across its other labels. */
export function buckets(values: MetricValue[]): Buckets {
  const byBound = new Map<number, number>();
  for (const v of values) {
    if (v.metricName !== undefined && !v.metricName.endsWith('_bucket')) continue;
    const le = v.labels['le'];
    if (le === undefined) continue;
    const bound = le === '+Inf' ? Number.POSITIVE_INFINITY : Number(le);
    byBound.set(bound, (byBound.get(bound) ?? 0) + v.value);
  }
  const bounds = [...byBound.keys()].sort((a, b) => a - b);
  return { bounds, counts: bounds.map((b) => byBound.get(b)!) };
}

/** `later - earlier`, bucket by bucket (a histogram that appeared in between counts from zero). */
export function bucketDelta(later: Buckets, earlier: Buckets): Buckets {
  const before = new Map(earlier.bounds.map((b, i) => [b, earlier.counts[i]!]));
  return {
    bounds: later.bounds,
    counts: later.counts.map((c, i) => Math.max(0, c - (before.get(later.bounds[i]!) ?? 0))),
  };
}

/**
 * The q-quantile of cumulative buckets, interpolated linearly inside its
 * bucket as Prometheus' histogram_quantile does; in the +Inf bucket, the
 * largest finite bound. Null without observations.
 */
export function quantile(q: number, histogram: Buckets): number | null {
  const { bounds, counts } = histogram;
  const total = counts.at(-1) ?? 0;
  if (total <= 0) return null;
  const rank = q * total;
  for (let i = 0; i < bounds.length; i++) {
    if (counts[i]! < rank) continue;
    const upper = bounds[i]!;
    if (upper === Number.POSITIVE_INFINITY) return bounds[i - 1] ?? null;
    const lower = i === 0 ? 0 : bounds[i - 1]!;
    const below = i === 0 ? 0 : counts[i - 1]!;
    const inBucket = counts[i]! - below;
    return inBucket <= 0 ? upper : lower + ((upper - lower) * (rank - below)) / inBucket;
  }
  return bounds.at(-2) ?? null;
}

/** The newest sample at least `windowMs` older than samples[i] (or the oldest there is). */
function before(samples: Totals[], i: number, windowMs: number): Totals {
  const at = samples[i]!.at;
  for (let j = i - 1; j >= 0; j--) {
    if (at - samples[j]!.at >= windowMs) return samples[j]!;
  }
  return samples[0]!;
}

const ms = (seconds: number | null): number | null =>
  seconds === null ? null : Math.round(seconds * 10_000) / 10;

/** Rates between `from` and `to`; percentiles between `percentileFrom` and `to`. */
function point(from: Totals, to: Totals, percentileFrom: Totals): LivePoint {
  const seconds = Math.max((to.at - from.at) / 1000, 0.001);
  const requests = to.requests - from.requests;
  const lookups = to.cacheHits - from.cacheHits + (to.cacheMisses - from.cacheMisses);
  const latency = bucketDelta(to.latency, percentileFrom.latency);
  const ttft = bucketDelta(to.ttft, percentileFrom.ttft);
  const same = from === to;
  return {
    t: to.at,
    rps: same ? 0 : requests / seconds,
    error_rate: requests > 0 ? (to.serverErrors - from.serverErrors) / requests : null,
    p50_ms: ms(quantile(0.5, latency)),
    p95_ms: ms(quantile(0.95, latency)),
    p99_ms: ms(quantile(0.99, latency)),
    ttft_p50_ms: ms(quantile(0.5, ttft)),
    ttft_p95_ms: ms(quantile(0.95, ttft)),
    cache_hit_rate: lookups > 0 ? (to.cacheHits - from.cacheHits) / lookups : null,
    tokens_per_s: same ? 0 : (to.tokens - from.tokens) / seconds,
    spend_usd_per_min: same ? 0 : ((to.spendUsd - from.spendUsd) / seconds) * 60,
  };
}
