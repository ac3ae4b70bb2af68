/**
 * Prometheus metrics. One registry per gateway instance (not the global one),
 * so several gateways in one process (tests, library use) do not collide.
 *
 * Label values never come raw from clients: models are the configured names
 * (unknown ones are bucketed as `other`), routes are route patterns.
 */
import { Counter, collectDefaultMetrics, Gauge, Registry } from 'prom-client';
import { LabelledCounter, LabelledHistogram } from './label-cells.ts';
import type { LoopDelay, LoopDelayStats } from './loop-delay.ts';

const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];

/** The most distinct keys (and teams) spend is labelled by: each label value is a time series kept forever. */
export const SPEND_LABELS = 1_000;

/** `value` while fewer than SPEND_LABELS values were seen (or it was one of them), else `other`. */
function bounded(seen: Set<string>, value: string): string {
  if (seen.has(value)) return value;
  if (seen.size >= SPEND_LABELS) return 'other';
  seen.add(value);
  return value;
}

export class GatewayMetrics {
  readonly registry = new Registry();
  // Touched by every request: cells per label set (label-cells.ts), not prom-client's per-call hashing.
  readonly requests: LabelledCounter<'route' | 'model' | 'provider' | 'status'>;
  readonly requestDuration: LabelledHistogram<'route' | 'model' | 'provider' | 'status'>;
  readonly upstreamDuration: LabelledHistogram<'provider' | 'model' | 'outcome'>;
  readonly timeToFirstToken: LabelledHistogram<'provider' | 'model'>;
  readonly tokens: LabelledCounter<'provider' | 'model' | 'type'>;
  readonly inFlight: Gauge<'route'>;
  readonly ledgerQueued: Gauge;
  /** Budget windows that crossed their alert threshold (80%), once per window, by window kind. */
  readonly budgetAlerts: Counter<'period'>;
  /** Spend (USD) by key and team (every priced attempt: cells too); past SPEND_LABELS distinct values of either, the rest count as `other`. */
  readonly spend: LabelledCounter<'key' | 'team'>;
  readonly #spendKeys = new Set<string>();
  readonly #spendTeams = new Set<string>();
  readonly #knownModels: Set<string>;
  /** Requests being handled, by route: plain counts, read into the gauge at scrape time. */
  readonly #inFlight = new Map<string, number>();
  /** Micro-dollars by provider, then model label: plain sums, read at scrape time. */
  readonly #costMicros = new Map<string, Map<string, number>>();
  /** Refusals by the gateway's own limits, by `scope|limit`: plain counts, read at scrape time. */
  readonly #rateLimited = new Map<string, number>();
  readonly #budgetRefused = new Map<string, number>();

  /**
   * `loopDelay`: the process's event-loop delay sampler, whose last window the
   * `nodejs_eventloop_lag_*` gauges report (the gateway's, shared with the
   * health check); without one, prom-client keeps a sampler of its own.
   */
  constructor(knownModels: Iterable<string>, ledgerQueued: () => number, loopDelay?: LoopDelay) {
    this.#knownModels = new Set(knownModels);
    const registers = [this.registry];
    this.requests = new LabelledCounter({
      name: 'switchyard_requests_total',
      help: 'Client requests by route, model, provider and HTTP status',
      labelNames: ['route', 'model', 'provider', 'status'],
      registers,
    });
    this.requestDuration = new LabelledHistogram({
      name: 'switchyard_request_duration_seconds',
      help: 'Client request latency, end to end',
      labelNames: ['route', 'model', 'provider', 'status'],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.upstreamDuration = new LabelledHistogram({
      name: 'switchyard_upstream_duration_seconds',
      help: 'Upstream attempt latency',
      labelNames: ['provider', 'model', 'outcome'],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.timeToFirstToken = new LabelledHistogram({
      name: 'switchyard_time_to_first_token_seconds',
      help: 'Time from request start to the first streamed token',
      labelNames: ['provider', 'model'],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.tokens = new LabelledCounter({
      name: 'switchyard_tokens_total',
      help: 'Tokens by provider, model and type (prompt, completion, cached)',
      labelNames: ['provider', 'model', 'type'],
      registers,
    });
    this.budgetAlerts = new Counter({
      name: 'switchyard_budget_alerts_total',
      help: 'Budget windows (day, month, total) that crossed their alert threshold',
      labelNames: ['period'],
      registers,
    });
    this.spend = new LabelledCounter({
      name: 'switchyard_spend_usd_total',
      help: `Spend in USD (priced attempts) by key and team; beyond ${SPEND_LABELS} distinct keys or teams, "other"`,
      labelNames: ['key', 'team'],
      registers,
    });
    const costMicros = this.#costMicros;
    new Counter({
      name: 'switchyard_cost_usd_total',
      help: 'What upstream attempts cost in USD, by provider and model (priced attempts; cache hits cost 0)',
      labelNames: ['provider', 'model'],
      registers,
      collect() {
        this.reset();
        for (const [provider, models] of costMicros)
          for (const [model, micros] of models) this.inc({ provider, model }, micros / 1_000_000);
      },
    });
    const rateLimited = this.#rateLimited;
    new Counter({
      name: 'switchyard_ratelimit_rejections_total',
      help: "Requests refused (429) by the gateway's own limits, by whose limit (key, team, user, gateway, model) and which (a window rule such as requests-minute, or concurrency)",
      labelNames: ['scope', 'limit'],
      registers,
      collect() {
        readPairs(this, rateLimited);
      },
    });
    const budgetRefused = this.#budgetRefused;
    new Counter({
      name: 'switchyard_budget_rejections_total',
      help: 'Requests refused (402) by a budget, by whose budget (key, team) and its period (day, month, total)',
      labelNames: ['scope', 'limit'],
      registers,
      collect() {
        readPairs(this, budgetRefused);
      },
    });
    // Node's and the process's own metrics under their standard names (process_*, nodejs_*), as dashboards expect.
    collectDefaultMetrics(
      loopDelay === undefined
        ? { register: this.registry }
        : { register: this.registry, eventLoopMonitoringPrecision: NEVER_MS },
    );
    if (loopDelay !== undefined) reportLoopDelay(this.registry, loopDelay);
    const inFlight = this.#inFlight;
    this.inFlight = new Gauge({
      name: 'switchyard_requests_in_flight',
      help: 'Requests currently being served',
      labelNames: ['route'],
      registers,
      collect() {
        for (const [route, n] of inFlight) this.set({ route }, n);
      },
    });
    this.ledgerQueued = new Gauge({
      name: 'switchyard_ledger_queued_rows',
      help: 'Usage rows waiting to be written',
      registers,
      collect() {
        this.set(ledgerQueued());
      },
    });
  }

  /** A request started being handled; pair each with exactly one `requestEnded`. */
  requestStarted(route: string): void {
    this.#inFlight.set(route, (this.#inFlight.get(route) ?? 0) + 1);
  }

  /** Its response finished, or its connection closed first. */
  requestEnded(route: string): void {
    this.#inFlight.set(route, (this.#inFlight.get(route) ?? 0) - 1);
  }

  /** Counts an attempt's cost (micro-dollars) under its provider and model label. */
  addCost(provider: string, modelLabel: string, micros: number): void {
    if (micros <= 0) return;
    let models = this.#costMicros.get(provider);
    if (models === undefined) {
      models = new Map();
      this.#costMicros.set(provider, models);
    }
    models.set(modelLabel, (models.get(modelLabel) ?? 0) + micros);
  }

  /** A request refused by the gateway's own limits (`scope`: key, team, user, gateway, model). */
  limitRefused(kind: 'rate' | 'budget', scope: string, limit: string): void {
    const counts = kind === 'rate' ? this.#rateLimited : this.#budgetRefused;
    const pair = `${scope}|${limit}`;
    counts.set(pair, (counts.get(pair) ?? 0) + 1);
  }

  /** Counts `micros` of spend for a key (`master` for the master key) and its team (`none`). */
  addSpend(keyId: string | null, teamId: string | null, micros: number): void {
    if (micros <= 0) return;
    this.spend.inc(
      { key: bounded(this.#spendKeys, keyId ?? 'master'), team: bounded(this.#spendTeams, teamId ?? 'none') },
      micros / 1_000_000,
    );
  }

  /** The label for a client-supplied model name: configured names only. */
  modelLabel(model: string | undefined): string {
    return model !== undefined && this.#knownModels.has(model) ? model : 'other';
  }

  #render: () => Promise<string> = () => this.registry.metrics();

  /** Renders through `render` from now on: an HTTP worker of `--workers N` renders the whole fleet's metrics. */
  renderThrough(render: () => Promise<string>): void {
    this.#render = render;
  }

  /** The Prometheus text a scrape gets. */
  async render(): Promise<string> {
    return this.#render();
  }
}

/** Sets a counter to plain `scope|limit` counts. */
function readPairs(counter: Counter<'scope' | 'limit'>, counts: Map<string, number>): void {
  counter.reset();
  for (const [pair, n] of counts) {
    const bar = pair.indexOf('|');
    counter.inc({ scope: pair.slice(0, bar), limit: pair.slice(bar + 1) }, n);
  }
}

/**
 * prom-client's default sampler is given a period it never reaches (~24 days:
 * its timer never wakes the process), and the seven gauges it would feed are
 * replaced, under the same standard names, by ones that read `loopDelay`'s
 * last window. `nodejs_eventloop_lag_seconds` stays prom-client's: measured
 * at each scrape, with no timer.
 */
const NEVER_MS = 2 ** 31 - 1;

const LOOP_DELAY_GAUGES: ReadonlyArray<[name: string, stat: keyof LoopDelayStats, what: string]> = [
  ['nodejs_eventloop_lag_min_seconds', 'min', 'The minimum'],
  ['nodejs_eventloop_lag_max_seconds', 'max', 'The maximum'],
  ['nodejs_eventloop_lag_mean_seconds', 'mean', 'The mean'],
  ['nodejs_eventloop_lag_stddev_seconds', 'stddev', 'The standard deviation'],
  ['nodejs_eventloop_lag_p50_seconds', 'p50', 'The 50th percentile'],
  ['nodejs_eventloop_lag_p90_seconds', 'p90', 'The 90th percentile'],
  ['nodejs_eventloop_lag_p99_seconds', 'p99', 'The 99th percentile'],
];

function reportLoopDelay(registry: Registry, loopDelay: LoopDelay): void {
  for (const [name, stat, what] of LOOP_DELAY_GAUGES) {
    registry.removeSingleMetric(name);
    new Gauge({
      name,
      help: `${what} of the event loop delays in seconds, over the last health-check interval`,
      registers: [registry],
      collect() {
        this.set(loopDelay.last[stat] / 1000);
      },
    });
  }
}
