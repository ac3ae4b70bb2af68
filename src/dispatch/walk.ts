/**
 * The walk over a request's candidate targets, and the attempt at its core.
 *
 * For each candidate in the router's order, the composed steps run around
 * one upstream attempt (GATEWAY_STEPS: retry → hedge → budget → breaker, see
 * resilience/dispatch-step.ts): an open breaker skips the target, a retryable
 * failure that the steps did not absorb falls back to the next one, an
 * exhausted retry budget stops the walk. The request's state is one object
 * (DispatchRequest), so the common path allocates it, one slot and the
 * attempt's context, and awaits no breaker.
 *
 * Streams are committed to the client only once the first chunk has arrived,
 * so every failure before that point can still be retried or fall back, and a
 * client that gets a 200 gets content; nothing is retried or hedged after that.
 */

import { promptOnly } from '../billing/bills.ts';
import type { Attempt, UsageRecorder } from '../billing/usage-recorder.ts';
import { ClientClosedError, GatewayError } from '../core/errors.ts';
import type { ChatCompletionChunk } from '../core/types.ts';
import { ATTR, genAiProviderName } from '../observability/trace-attributes.ts';
import type { TraceSpan } from '../observability/tracing.ts';
import type { AttemptContext } from '../providers/types.ts';
import { withBreaker } from '../resilience/breaker-step.ts';
import { withBudget } from '../resilience/budget-step.ts';
import { CircuitOpenError } from '../resilience/circuit-breaker.ts';
import {
  AttemptSlot,
  asGatewayError,
  composeSteps,
  type DispatchState,
  RetryBudgetExhaustedError,
  type Step,
  type Wrapper,
} from '../resilience/dispatch-step.ts';
import { HedgeLostError } from '../resilience/hedge.ts';
import { withHedge } from '../resilience/hedge-step.ts';
import type { Resilience } from '../resilience/resilience.ts';
import { sleep } from '../resilience/retry.ts';
import { withRetry } from '../resilience/retry-step.ts';
import type { AttemptObserver, AttemptOutcome } from '../routing/attempt-observer.ts';
import type { ModelRoute, RouteTarget } from '../routing/model-table.ts';

export type { AttemptObserver, AttemptOutcome };

/** How a request was served; routes turn it into `x-switchyard-*` headers. */
export interface DispatchReport {
  /** The target that served, or the last one tried. */
  target: string | undefined;
  /** Upstream attempts made (retries and hedges included). */
  attempts: number;
  /** Why the request left its first candidate (error code or `circuit_open`); unset when it did not. */
  fallbackReason: string | undefined;
}

export interface DispatchOptions {
  signal: AbortSignal;
  requestId: string;
  recorder: UsageRecorder;
  /** Prompt tokens to bill when a client abort leaves us without upstream usage. */
  estimatePromptTokens?: () => number;
  /** Candidates in the order to try them; `route.targets` when absent. */
  targets?: RouteTarget[];
  /** Told when each attempt starts and ends (the Router's capacity and latency accounting). */
  observer?: AttemptObserver;
  /** Breakers, retry budget and latency sketches; without it, plain ordered fallback. */
  resilience?: Resilience | undefined;
  /** Filled in as the request is dispatched (also when it fails). */
  report?: DispatchReport;
  /**
   * The steps around each attempt, outermost first; `GATEWAY_STEPS` (retry,
   * hedge, budget, breaker) when absent. Composed per request when given.
   */
  steps?: readonly Wrapper[];
  /** How retries wait (tests pass a fake clock); `sleep` from retry.ts when absent. */
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
}

/** A stream that has delivered its first item: from here on it is committed to the client. */
export interface StreamStart<Item = ChatCompletionChunk> {
  attempt: Attempt;
  first: Item;
  rest: AsyncIterator<Item>;
}

export function newDispatchReport(): DispatchReport {
  return { target: undefined, attempts: 0, fallbackReason: undefined };
}

/**
 * One attempt on one target; `attempt` is its ledger entry, ended by the caller
 * on success. `input` is what the dispatcher was given to send (so the common
 * calls can be module functions instead of a closure per request).
 */
export type AttemptCall<T, Input = undefined> = (
  target: RouteTarget,
  ctx: AttemptContext,
  attempt: Attempt,
  input: Input,
) => Promise<T>;

/** The gateway's steps around every attempt, outermost first. */
export const GATEWAY_STEPS: readonly Wrapper[] = [withRetry, withHedge, withBudget, withBreaker];

/**
 * One request's dispatch: its state (the steps read and report through it)
 * and the walk over its candidates. Per-request state lives in fields and the
 * steps are composed once per process, so the common path (first target
 * answers, breaker closed, no hedging) allocates this object, one slot and
 * the attempt's context, and awaits no breaker.
 */
class DispatchRequest<T extends { attempt: Attempt }, Input> implements DispatchState {
  readonly route: ModelRoute;
  readonly signal: AbortSignal;
  readonly resilience: Resilience | undefined;
  readonly observer: AttemptObserver | undefined;
  readonly options: DispatchOptions;
  readonly call: AttemptCall<T, Input>;
  readonly input: Input;
  readonly report: DispatchReport;
  readonly #discard: (value: T) => void;
  readonly #targets: RouteTarget[];
  launched = 0;
  #next = 0;
  #skippedOpen = 0;
  #openRetryAfterMs: number | undefined = undefined;
  /** Only a failing request needs the list. */
  #failures: GatewayError[] | undefined = undefined;
  #promptTokens: number | undefined = undefined;

  constructor(
    route: ModelRoute,
    options: DispatchOptions,
    call: AttemptCall<T, Input>,
    discard: (value: T) => void,
    input: Input,
  ) {
    this.route = route;
    this.options = options;
    this.signal = options.signal;
    this.resilience = options.resilience;
    this.observer = options.observer;
    this.call = call;
    this.#discard = discard;
    this.input = input;
    this.#targets = options.targets ?? route.targets;
    this.report = options.report ?? newDispatchReport();
  }

  /** Tries the candidates in order through `step` until one serves, or none is left. */
  async run(step: Step<T>): Promise<T> {
    const signal = this.signal;
    this.resilience?.budget.deposit();
    for (;;) {
      if (signal.aborted) throw new ClientClosedError();
      const target = this.takeCandidate();
      if (!target) break;
      try {
        return await step(this, new AttemptSlot(target, signal, this.observer));
      } catch (error) {
        if (error instanceof ClientClosedError || signal.aborted) throw new ClientClosedError();
        if (error instanceof CircuitOpenError) {
          this.skipped(error);
          continue;
        }
        if (error instanceof RetryBudgetExhaustedError) break;
        const failure = asGatewayError(error);
        if (!failure.retryable) throw failure;
        this.failed(failure);
        this.report.fallbackReason = failure.code;
        if (this.hasMoreCandidates()) this.resilience?.metrics.fallbacks.inc({ reason: failure.code });
      }
    }
    if (signal.aborted) throw new ClientClosedError();
    throw finalError(this.#failures ?? [], this.launched, this.#skippedOpen, this.#openRetryAfterMs);
  }

  hasMoreCandidates(): boolean {
    return this.#next < this.#targets.length;
  }

  takeCandidate(): RouteTarget | undefined {
    return this.#next < this.#targets.length ? this.#targets[this.#next++] : undefined;
  }

  untakeCandidate(): void {
    if (this.#next > 0) this.#next--;
  }

  skipped(error: CircuitOpenError): void {
    this.#skippedOpen++;
    const wait = error.retryAfterMs;
    if (wait !== undefined && wait > 0) {
      this.#openRetryAfterMs = Math.min(this.#openRetryAfterMs ?? wait, wait);
    }
    this.report.fallbackReason ??= 'circuit_open';
  }

  failed(error: GatewayError): void {
    this.#failures ??= [];
    this.#failures.push(error);
  }

  retried(target: RouteTarget, code: string): void {
    this.resilience?.metrics.retries.inc({ target: target.id, reason: code });
  }

  hedged(target: RouteTarget, outcome: 'launched' | 'won'): void {
    this.resilience?.metrics.hedges.inc({ outcome });
    if (outcome === 'won') this.report.target = target.id;
  }

  discardLate(late: unknown): void {
    this.#discard(late as T);
  }

  sleep(ms: number, signal: AbortSignal): Promise<void> {
    return (this.options.sleep ?? sleep)(ms, signal);
  }

  /** `estimatedPromptTokens` as a value, for the observer (bound once per request, not per attempt). */
  readonly promptTokensLazily = (): number => this.estimatedPromptTokens();

  /** Computed once per request, and only if someone asks (capacity accounting, an abort's bill). */
  estimatedPromptTokens(): number {
    this.#promptTokens ??= this.options.estimatePromptTokens?.() ?? 0;
    return this.#promptTokens;
  }
}

/**
 * The innermost step: one upstream attempt with its ledger entry. The slot
 * listens for the attempt's end (settling the breaker permit); a failure is
 * billed here and waits for the breaker's bookkeeping before the next attempt.
 */
async function attemptStep<T extends { attempt: Attempt }>(
  state: DispatchState,
  slot: AttemptSlot,
): Promise<T> {
  const request = state as DispatchRequest<T, unknown>;
  const target = slot.target;
  const report = request.report;
  request.launched++;
  report.attempts++;
  report.target = target.id;
  if (slot.hedge) request.hedged(target, 'launched');
  const attempt = request.options.recorder.attempt(target.provider.name, target.model);
  attempt.endListener = slot;
  const signal = slot.signal;
  const ctx: AttemptContext = {
    signal,
    requestId: request.options.requestId,
    timeouts: request.route.timeouts,
    // A trace the sampler left out still carries on upstream (unsampled), from the request's span.
    traceHeaders: attempt.span.recording
      ? traceAttempt(attempt.span, target)
      : request.options.recorder.trace.outboundHeaders(),
  };
  request.observer?.onAttemptStart?.(target, request.promptTokensLazily);
  const startedAt = performance.now();
  try {
    const value = await request.call(target, ctx, attempt, request.input);
    request.resilience?.sketch(target.id).add(performance.now() - startedAt);
    return value;
  } catch (error) {
    if (request.signal.aborted || signal.aborted) {
      // The upstream may already have read (and will bill) the prompt.
      const billed = promptOnly(request.estimatedPromptTokens());
      if (request.signal.aborted) {
        attempt.clientClosed(billed);
        throw new ClientClosedError();
      }
      attempt.hedgeLost(billed);
      throw new HedgeLostError();
    }
    const failure = asGatewayError(error);
    attempt.failed(failure);
    // The breaker must know before the next attempt asks it.
    await slot.settled;
    throw failure;
  }
}

const GATEWAY_STEP = composeSteps(GATEWAY_STEPS, attemptStep);

/** The target on the attempt's span; the trace context that makes the upstream's spans its children. */
function traceAttempt(span: TraceSpan, target: RouteTarget): Readonly<Record<string, string>> | undefined {
  span.set(ATTR.genAiProviderName, genAiProviderName(target.provider.type));
  span.set(ATTR.target, target.id);
  return span.outboundHeaders();
}

export function walk<T extends { attempt: Attempt }, Input>(
  route: ModelRoute,
  options: DispatchOptions,
  call: AttemptCall<T, Input>,
  discard: (value: T) => void,
  input: Input,
): Promise<T> {
  const request = new DispatchRequest(route, options, call, discard, input);
  const step = options.steps ? composeSteps(options.steps, attemptStep) : GATEWAY_STEP;
  return request.run(step as Step<T>);
}

/**
 * The error the client sees when no candidate served: 503 when every breaker
 * was open (nothing sent), 429 when every attempt was rate limited (with the
 * shortest Retry-After), otherwise the last failure (504 timeout, 502/503 upstream).
 */
function finalError(
  failures: GatewayError[],
  launched: number,
  skippedOpen: number,
  openRetryAfterMs: number | undefined,
): GatewayError {
  if (launched === 0 && skippedOpen > 0) {
    return new GatewayError('upstream_unavailable', 'Every upstream target is unavailable (circuit open)', {
      ...(openRetryAfterMs !== undefined ? { retryAfterMs: openRetryAfterMs } : {}),
    });
  }
  const last = failures.at(-1);
  if (!last) return new GatewayError('upstream_error', 'No target could serve the request');
  if (failures.every((f) => f.code === 'upstream_rate_limited')) {
    const waits = failures.map((f) => f.retryAfterMs).filter((ms): ms is number => ms !== undefined);
    if (waits.length === 0) return last;
    return new GatewayError('upstream_rate_limited', last.message, {
      retryAfterMs: Math.min(...waits),
      ...(last.upstreamStatus !== undefined ? { upstreamStatus: last.upstreamStatus } : {}),
    });
  }
  return last;
}
