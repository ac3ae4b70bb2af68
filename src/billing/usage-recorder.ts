/**
 * Per-request accounting: one ledger row per upstream attempt, plus metrics.
 *
 * A request may make several attempts (retries, fallbacks, hedges); each is
 * billed on its own row keyed by (request_id, attempt), so a retried or
 * replayed write never doubles money. An attempt ends in one of a few named
 * ways (`ok`, `failed`, `clientClosed`, `hedgeLost`, `streamEnded`): callers
 * say what happened and what to bill, this module alone says what the row is.
 * The cache (hits bill zero), budgets (reserve and settle) and jobs plug in here.
 */
import type { ErrorCode, GatewayError } from '../core/errors.ts';
import type { Billed, Usage, UsageSource } from '../core/types.ts';
import type { LedgerRow } from '../ledger/usage-ledger.ts';
import type { GatewayMetrics } from '../observability/metrics.ts';
import { ATTR, genAiOperation } from '../observability/trace-attributes.ts';
import { NOOP_SPAN, type TraceSpan } from '../observability/tracing.ts';
import type { CacheStatus } from '../store/schema.ts';
import type { AttemptPricer } from './attempt-pricer.ts';

export type AttemptStatus = LedgerRow['status'];

export interface AttemptResult {
  status: AttemptStatus;
  httpStatus: number;
  errorCode?: ErrorCode | string | null;
  usage?: Usage | undefined;
  usageSource: UsageSource;
}

/** How a stream that had started ended: failed mid-way, abandoned by the client, or complete. */
export interface StreamEnding {
  failure: GatewayError | undefined;
  clientGone: boolean;
}

export interface RequestInfo {
  /** The gateway's own id for the request (unique: the ledger's key). */
  requestId: string;
  /** The id the client sent in x-request-id, if any. */
  clientRequestId?: string | null;
  keyId: string | null;
  /** The key's team, for spend by team in metrics (the ledger finds it through the key). */
  teamId?: string | null;
  route: string;
  modelRequested: string;
  stream: boolean;
}

/** Where rows go: the gateway's UsageLedger, or anything a library user records them with. */
export interface LedgerWriter {
  record(row: LedgerRow): void;
  /** Calls `done` once the rows recorded so far are durable; absent: they are at once. */
  whenDurable?(done: () => void): void;
}

export class UsageRecorder {
  readonly #ledger: LedgerWriter;
  readonly #metrics: GatewayMetrics | undefined;
  readonly #info: RequestInfo;
  readonly #modelLabel: string;
  readonly #pricer: AttemptPricer | undefined;
  readonly startedAt = performance.now();
  /** What the request's attempts cost so far, in micro-dollars; null once one could not be priced. */
  #costMicros: number | null = 0;
  /** Upstream tokens (prompt and completion) the request's attempts used so far. */
  #tokens = 0;
  #attempts = 0;
  /** Provider of the last attempt, for request-level metric labels. */
  lastProvider = 'none';
  /** What the response cache did for this request (set by the route before dispatch). */
  cacheStatus: CacheStatus = 'bypass';
  /** The request's span (set by the route): each attempt is a child, and so is the wait for the ledger. */
  trace: TraceSpan = NOOP_SPAN;
  #ledgerTraced = false;
  #inputTokens = 0;
  #outputTokens = 0;

  /**
   * `metrics` may be left out in-process (a library user with metrics of their
   * own); without a `pricer` every upstream row's cost is unknown (null).
   */
  constructor(
    ledger: LedgerWriter,
    metrics: GatewayMetrics | undefined,
    info: RequestInfo,
    pricer?: AttemptPricer,
  ) {
    this.#ledger = ledger;
    this.#metrics = metrics;
    this.#info = info;
    this.#pricer = pricer;
    this.#modelLabel = metrics?.modelLabel(info.modelRequested) ?? info.modelRequested;
  }

  get info(): RequestInfo {
    return this.#info;
  }

  /** The request's cost so far in micro-dollars; null when an attempt's price is unknown. */
  get costMicros(): number | null {
    return this.#costMicros;
  }

  /** Upstream tokens (prompt and completion) the request's attempts used so far; a cache hit used none. */
  get tokens(): number {
    return this.#tokens;
  }

  /** Upstream prompt tokens the request's attempts used so far (the request log line). */
  get promptTokens(): number {
    return this.#inputTokens;
  }

  /** Upstream completion tokens the request's attempts used so far. */
  get completionTokens(): number {
    return this.#outputTokens;
  }

  /** Attempts made so far (a cache hit counts as one). */
  get attempts(): number {
    return this.#attempts;
  }

  /** The request's cost so far in USD (`x-switchyard-cost-usd`); undefined when an attempt's price is unknown. */
  get costUsd(): string | undefined {
    const micros = this.#costMicros;
    return micros === null ? undefined : (micros / 1_000_000).toFixed(6);
  }

  attempt(provider: string, model: string): Attempt {
    this.#attempts++;
    this.lastProvider = provider;
    const attempt = new Attempt(this, this.#attempts, provider, model);
    if (this.trace.recording) attempt.span = this.#attemptSpan(attempt);
    return attempt;
  }

  /** An upstream attempt's span, GenAI-style: `<operation> <model>`, kind client. */
  #attemptSpan(attempt: Attempt): TraceSpan {
    const operation = genAiOperation(this.#info.route);
    const span = this.trace.child(`${operation} ${attempt.model}`, 'client');
    span.set(ATTR.genAiOperationName, operation);
    span.set(ATTR.genAiRequestModel, attempt.model);
    span.set(ATTR.provider, attempt.provider);
    span.set(ATTR.attemptNumber, attempt.number);
    if (this.#info.stream) span.set(ATTR.genAiRequestStream, true);
    return span;
  }

  /**
   * The request was answered from the response cache: one row (attempt 1,
   * provider `cache`) with no upstream tokens and no cost, and the request's
   * metrics. Its answer waits for the row to be durable like any other
   * (`durable`; a JSON answer's wait is app.ts's onSend hook).
   */
  cacheHit(): void {
    // A semantic hit stays one; anything else the route set before the lookup becomes a hit.
    if (this.cacheStatus !== 'semantic-hit') this.cacheStatus = 'hit';
    this.lastProvider = 'cache';
    this.#attempts++;
    this.write(
      new Attempt(this, this.#attempts, 'cache', this.#info.modelRequested),
      { status: 'ok', httpStatus: 200, usageSource: 'none' },
      performance.now() - this.startedAt,
      null,
      false,
    );
    this.finish(200);
  }

  /** Called by an Attempt when it ends. */
  write(
    attempt: Attempt,
    result: AttemptResult,
    latencyMs: number,
    ttftMs: number | null,
    upstream = true,
  ): void {
    const usage = result.usage;
    const row: LedgerRow = {
      requestId: this.#info.requestId,
      attempt: attempt.number,
      clientRequestId: this.#info.clientRequestId ?? null,
      keyId: this.#info.keyId,
      route: this.#info.route,
      modelRequested: this.#info.modelRequested,
      provider: attempt.provider,
      modelUsed: attempt.model,
      status: result.status,
      httpStatus: result.httpStatus,
      errorCode: result.errorCode ?? null,
      stream: this.#info.stream,
      promptTokens: usage?.prompt_tokens ?? 0,
      completionTokens: usage?.completion_tokens ?? 0,
      cachedTokens: usage?.prompt_tokens_details?.cached_tokens ?? 0,
      reasoningTokens: usage?.completion_tokens_details?.reasoning_tokens ?? 0,
      usageSource: result.usageSource,
      latencyMs,
      ttftMs,
      cacheStatus: this.cacheStatus,
      // A cache hit cost nothing; an upstream call costs what its usage does at the model's price.
      costMicros: upstream ? (this.#pricer?.costMicros(attempt.model, usage) ?? null) : 0,
      createdAt: Date.now(),
    };
    this.#costMicros =
      this.#costMicros === null || row.costMicros === null ? null : this.#costMicros + row.costMicros;
    if (upstream) {
      this.#tokens += row.promptTokens + row.completionTokens;
      this.#inputTokens += row.promptTokens;
      this.#outputTokens += row.completionTokens;
    }
    if (attempt.span.recording) traceAttemptEnd(attempt.span, row);
    if (row.costMicros !== null)
      this.#metrics?.addSpend(row.keyId, this.#info.teamId ?? null, row.costMicros);
    this.#ledger.record(row);
    const metrics = this.#metrics;
    // Upstream metrics are for upstream calls: a cache hit made none.
    if (!metrics || !upstream) return;
    if (row.costMicros !== null) metrics.addCost(attempt.provider, this.#modelLabel, row.costMicros);
    const outcome = result.status === 'ok' ? 'ok' : (result.errorCode ?? result.status);
    metrics.upstreamDuration.observe(
      { provider: attempt.provider, model: this.#modelLabel, outcome: String(outcome) },
      latencyMs / 1000,
    );
    if (ttftMs !== null) {
      metrics.timeToFirstToken.observe(
        { provider: attempt.provider, model: this.#modelLabel },
        ttftMs / 1000,
      );
    }
    if (usage) {
      metrics.tokens.inc(
        { provider: attempt.provider, model: this.#modelLabel, type: 'prompt' },
        row.promptTokens,
      );
      metrics.tokens.inc(
        { provider: attempt.provider, model: this.#modelLabel, type: 'completion' },
        row.completionTokens,
      );
      if (row.cachedTokens > 0) {
        metrics.tokens.inc(
          { provider: attempt.provider, model: this.#modelLabel, type: 'cached' },
          row.cachedTokens,
        );
      }
    }
  }

  /**
   * Bills a stream that has ended (see `Attempt.streamEnded`) and records the
   * request's metrics with the status the client saw; resolves once the bill
   * is durable, which the stream's last frame waits for.
   */
  settleStream(attempt: Attempt, ending: StreamEnding, billed: Billed): Promise<void> {
    attempt.streamEnded(ending, billed);
    this.finish(ending.failure ? ending.failure.status : ending.clientGone ? 499 : 200);
    return this.durable();
  }

  /** Resolves once this request's rows are durable (spooled): an answer's last byte waits for it. */
  durable(): Promise<void> {
    if (this.#ledger.whenDurable === undefined) return Promise.resolve();
    return new Promise((resolve) => this.whenDurable(resolve));
  }

  /**
   * Calls `done` once this request's rows are durable. Traced as the
   * request's `ledger write` span: the time its answer waits for its usage
   * to be on disk (the spool's group commit). The database insert happens
   * later, batched across requests, and is no one request's latency.
   */
  whenDurable(done: () => void): void {
    const ledger = this.#ledger;
    if (ledger.whenDurable === undefined) {
      done();
      return;
    }
    if (!this.trace.recording || this.#ledgerTraced) {
      ledger.whenDurable(done);
      return;
    }
    this.#ledgerTraced = true;
    const span = this.trace.child('ledger write');
    span.set(ATTR.ledgerRows, this.#attempts);
    ledger.whenDurable(() => {
      span.end();
      done();
    });
  }

  /** Request-level metrics, once, when the response is done. */
  finish(httpStatus: number): void {
    if (this.trace.recording) this.#traceFinish();
    const metrics = this.#metrics;
    if (!metrics) return;
    const labels = {
      route: this.#info.route,
      model: this.#modelLabel,
      provider: this.lastProvider,
      status: String(httpStatus),
    };
    metrics.requests.inc(labels);
    metrics.requestDuration.observe(labels, (performance.now() - this.startedAt) / 1000);
  }

  /** What the request used and cost, on its span (its attempts' totals). */
  #traceFinish(): void {
    const span = this.trace;
    span.set(ATTR.genAiOperationName, genAiOperation(this.#info.route));
    span.set(ATTR.genAiRequestModel, this.#info.modelRequested);
    span.set(ATTR.attempts, this.#attempts);
    span.set(ATTR.cacheStatus, this.cacheStatus);
    if (this.lastProvider !== 'none') span.set(ATTR.provider, this.lastProvider);
    span.set(ATTR.genAiUsageInputTokens, this.#inputTokens);
    span.set(ATTR.genAiUsageOutputTokens, this.#outputTokens);
    span.set(ATTR.costUsd, this.costUsd);
  }
}

/** How an attempt ended, on its span: the ledger row's status, tokens and cost. */
function traceAttemptEnd(span: TraceSpan, row: LedgerRow): void {
  span.set(ATTR.attemptStatus, row.status);
  // A failed attempt's upstream status was set by `failed` (the row has the gateway's own).
  if (row.status === 'ok') span.set(ATTR.httpResponseStatusCode, 200);
  span.set(ATTR.genAiUsageInputTokens, row.promptTokens);
  span.set(ATTR.genAiUsageOutputTokens, row.completionTokens);
  if (row.cachedTokens > 0) span.set(ATTR.genAiUsageCacheReadInputTokens, row.cachedTokens);
  if (row.costMicros !== null) span.set(ATTR.costUsd, (row.costMicros / 1_000_000).toFixed(6));
  // A hedge that lost or a client that left is how the attempt ended, not a failure of it.
  if (row.status === 'error' || row.status === 'timeout') span.fail(row.errorCode ?? row.status);
  span.end();
}

/** Told when an attempt ends (dispatch: the breaker permit and the router's statistics). */
export interface AttemptEndListener {
  attemptEnded(result: AttemptResult, latencyMs: number, ttftMs: number | null): void;
}

export class Attempt {
  readonly #recorder: UsageRecorder;
  readonly number: number;
  readonly provider: string;
  readonly model: string;
  readonly #startedAt = performance.now();
  #firstTokenAt: number | null = null;
  #ended = false;
  /** The attempt's span (ended with its ledger row); NOOP_SPAN when the request is not traced. */
  span: TraceSpan = NOOP_SPAN;
  /** Set by dispatch: settles the target's breaker permit and feeds the router's latency stats. */
  endListener: AttemptEndListener | undefined;

  constructor(recorder: UsageRecorder, number: number, provider: string, model: string) {
    this.#recorder = recorder;
    this.number = number;
    this.provider = provider;
    this.model = model;
  }

  markFirstToken(): void {
    if (this.#firstTokenAt === null) this.#firstTokenAt = performance.now();
  }

  /** The upstream answered: bill what it reported (nothing when it reported nothing), or `source` says otherwise. */
  ok(usage: Usage | undefined, source: UsageSource = usage ? 'upstream' : 'none'): void {
    this.#end({ status: 'ok', httpStatus: 200, usage, usageSource: source });
  }

  /** The attempt failed with `error`; `billed` when it consumed tokens anyway (an answer we could not use). */
  failed(error: GatewayError, billed?: Billed): void {
    if (this.span.recording) this.span.set(ATTR.httpResponseStatusCode, error.upstreamStatus);
    this.#end({
      status: error.code === 'upstream_timeout' ? 'timeout' : 'error',
      httpStatus: error.status,
      errorCode: error.code,
      usage: billed?.usage,
      usageSource: billed?.source ?? 'none',
    });
  }

  /** The client went away during the attempt; the upstream may have read (and billed) the prompt. */
  clientClosed(billed?: Billed): void {
    this.#closed('client_closed', billed);
  }

  /** Another attempt of the same request answered first; this one is billed for what it used. */
  hedgeLost(billed?: Billed): void {
    this.#closed('hedge_lost', billed);
  }

  /** A stream that started has ended: complete, failed mid-way, or left by its client. */
  streamEnded(ending: StreamEnding, billed: Billed): void {
    if (ending.failure) this.failed(ending.failure, billed);
    else if (ending.clientGone) this.clientClosed(billed);
    else this.ok(billed.usage, billed.source);
  }

  #closed(status: 'client_closed' | 'hedge_lost', billed: Billed | undefined): void {
    this.#end({
      status,
      httpStatus: 499,
      errorCode: status,
      usage: billed?.usage,
      usageSource: billed?.source ?? 'none',
    });
  }

  /** Writes the attempt's ledger row; later calls are ignored (exactly one row per attempt). */
  #end(result: AttemptResult): void {
    if (this.#ended) return;
    this.#ended = true;
    const latencyMs = performance.now() - this.#startedAt;
    // TTFT is measured from the client request's start, as the client sees it.
    const ttft = this.#firstTokenAt === null ? null : this.#firstTokenAt - this.#recorder.startedAt;
    this.#recorder.write(this, result, latencyMs, ttft);
    this.endListener?.attemptEnded(result, latencyMs, ttft);
  }
}
