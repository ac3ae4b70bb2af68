/**
 * Per-request accounting: one ledger row per upstream attempt, plus metrics.
 *
 * A request may make several attempts (fallback now; retries and hedges
 * later); each that reached an upstream is billed on its own row keyed by
 * (request_id, attempt), so a retried or replayed write never doubles money.
 */
import type { ErrorCode } from '../core/errors.ts';
import type { Usage } from '../core/types.ts';
import type { LedgerRow, UsageLedger } from '../ledger/usage-ledger.ts';
import type { GatewayMetrics } from '../observability/metrics.ts';

export type AttemptStatus = LedgerRow['status'];

export interface AttemptResult {
  status: AttemptStatus;
  httpStatus: number;
  errorCode?: ErrorCode | string | null;
  usage?: Usage | undefined;
  usageSource: LedgerRow['usageSource'];
}

export interface RequestInfo {
  requestId: string;
  keyId: string | null;
  route: string;
  modelRequested: string;
  stream: boolean;
}

export class UsageRecorder {
  readonly #ledger: UsageLedger;
  readonly #metrics: GatewayMetrics;
  readonly #info: RequestInfo;
  readonly #modelLabel: string;
  readonly startedAt = performance.now();
  #attempts = 0;
  /** Provider of the last attempt, for request-level metric labels. */
  lastProvider = 'none';

  constructor(ledger: UsageLedger, metrics: GatewayMetrics, info: RequestInfo) {
    this.#ledger = ledger;
    this.#metrics = metrics;
    this.#info = info;
    this.#modelLabel = metrics.modelLabel(info.modelRequested);
  }

  get info(): RequestInfo {
    return this.#info;
  }

  attempt(provider: string, model: string): Attempt {
    this.#attempts++;
    this.lastProvider = provider;
    return new Attempt(this, this.#attempts, provider, model);
  }

  /** Called by an Attempt when it ends. */
  write(attempt: Attempt, result: AttemptResult, latencyMs: number, ttftMs: number | null): void {
    const usage = result.usage;
    const row: LedgerRow = {
      requestId: this.#info.requestId,
      attempt: attempt.number,
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
      cacheStatus: 'miss',
      costMicros: null,
      createdAt: Date.now(),
    };
    this.#ledger.record(row);
    const outcome = result.status === 'ok' ? 'ok' : (result.errorCode ?? result.status);
    this.#metrics.upstreamDuration.observe(
      { provider: attempt.provider, model: this.#modelLabel, outcome: String(outcome) },
      latencyMs / 1000,
    );
    if (ttftMs !== null) {
      this.#metrics.timeToFirstToken.observe(
        { provider: attempt.provider, model: this.#modelLabel },
        ttftMs / 1000,
      );
    }
    if (usage) {
      this.#metrics.tokens.inc(
        { provider: attempt.provider, model: this.#modelLabel, kind: 'prompt' },
        row.promptTokens,
      );
      this.#metrics.tokens.inc(
        { provider: attempt.provider, model: this.#modelLabel, kind: 'completion' },
        row.completionTokens,
      );
      if (row.cachedTokens > 0) {
        this.#metrics.tokens.inc(
          { provider: attempt.provider, model: this.#modelLabel, kind: 'cached' },
          row.cachedTokens,
        );
      }
    }
  }

  /** Request-level metrics, once, when the response is done. */
  finish(httpStatus: number): void {
    const labels = {
      route: this.#info.route,
      model: this.#modelLabel,
      provider: this.lastProvider,
      status: String(httpStatus),
    };
    this.#metrics.requests.inc(labels);
    this.#metrics.requestDuration.observe(labels, (performance.now() - this.startedAt) / 1000);
  }
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

  /** Writes the attempt's ledger row; later calls are ignored (exactly one row per attempt). */
  end(result: AttemptResult): void {
    if (this.#ended) return;
    this.#ended = true;
    const latencyMs = performance.now() - this.#startedAt;
    // TTFT is measured from the client request's start, as the client sees it.
    const ttft = this.#firstTokenAt === null ? null : this.#firstTokenAt - this.#recorder.startedAt;
    this.#recorder.write(this, result, latencyMs, ttft);
    this.endListener?.attemptEnded(result, latencyMs, ttft);
  }
}
