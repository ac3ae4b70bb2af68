/**
 * Sends a request to an ordered list of candidate targets (the router decides
 * the order): for each, skip it while its circuit breaker is open, attempt it
 * with the model's timeouts, record the outcome on the breaker, retry it with
 * jittered backoff while `retries.max` and the shared retry budget allow, then
 * fall back to the next candidate. With hedging on, a slow first attempt races
 * a second one on the next candidate.
 *
 * Streams are committed to the client only once the first chunk has arrived,
 * so every failure before that point can still be retried or fall back, and a
 * client that gets a 200 gets content; nothing is retried or hedged after that.
 */
import { ClientClosedError, countsAgainstTarget, GatewayError } from '../core/errors.ts';
import {
  type ChatCompletion,
  type ChatCompletionChunk,
  type ChatRequest,
  type EmbeddingRequest,
  type EmbeddingResponse,
  USAGE_ESTIMATED,
  type Usage,
} from '../core/types.ts';
import type { AttemptContext } from '../providers/types.ts';
import type { BreakerPermit, CircuitBreaker } from '../resilience/circuit-breaker.ts';
import { HedgeLostError, hedge } from '../resilience/hedge.ts';
import type { Resilience } from '../resilience/resilience.ts';
import { type RetryLease, retryDelay, sleep } from '../resilience/retry.ts';
import type { ModelRoute, RouteTarget } from '../routing/model-table.ts';
import type { Attempt, AttemptEndListener, AttemptResult, UsageRecorder } from './usage-recorder.ts';

/** What one attempt did, for the router's latency and capacity statistics. */
export interface AttemptOutcome {
  ok: boolean;
  errorCode?: string;
  latencyMs: number;
  ttftMs?: number;
  usage?: Usage;
}

export interface AttemptObserver {
  /**
   * Before the attempt is sent: capacity accounting counts it from here. The
   * estimate is lazy, so an observer that does not need it costs nothing.
   */
  onAttemptStart?(target: RouteTarget, estimatedTokens: () => number): void;
  /** Once per attempt when it ends (success, failure, abort, hedge lost). */
  onAttemptEnd(target: RouteTarget, outcome: AttemptOutcome): void;
}

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

const SETTLED: Promise<void> = Promise.resolve();

/** The permit of a target without a breaker. */
const FREE: BreakerPermit = {
  probe: false,
  success: () => SETTLED,
  failure: () => SETTLED,
  release: () => SETTLED,
};

/** The lease of a request's first attempt, which the budget does not count. */
const FIRST_ATTEMPT: RetryLease = { release: () => {} };

/** Failures after which the same target is unlikely to do better at once: try the next one first. */
function targetLooksDown(code: string): boolean {
  return code === 'upstream_timeout' || code === 'upstream_connect_failed';
}

/**
 * Adapters turn everything the upstream did into a GatewayError (HTTP status,
 * transport error, malformed answer). Anything else thrown during an attempt
 * is the gateway's own failure (a bug, a stack overflow): a 500 that is not
 * retried and never counts against the target, since the upstream did
 * nothing wrong. The app's error handler logs it at error level.
 */
function asGatewayError(error: unknown): GatewayError {
  return GatewayError.is(error)
    ? error
    : new GatewayError('internal_error', 'Internal gateway error', { cause: error });
}

/**
 * A target the breakers let through, with its permit: it serves exactly one
 * attempt (a retry takes a new one), so it also listens for that attempt's
 * end, to settle the permit and tell the observer.
 */
class Candidate implements AttemptEndListener {
  readonly target: RouteTarget;
  readonly permit: BreakerPermit;
  readonly #observer: AttemptObserver | undefined;
  /** The breaker's bookkeeping of the attempt; a failure waits for it before the next attempt. */
  settled: Promise<void> | undefined = undefined;

  constructor(target: RouteTarget, permit: BreakerPermit, observer: AttemptObserver | undefined) {
    this.target = target;
    this.permit = permit;
    this.#observer = observer;
  }

  attemptEnded(result: AttemptResult, latencyMs: number, ttftMs: number | null): void {
    const code = result.errorCode ?? undefined;
    const ok = result.status === 'ok';
    this.settled = ok
      ? this.permit.success()
      : countsAgainstTarget(code)
        ? this.permit.failure()
        : this.permit.release();
    this.#observer?.onAttemptEnd(this.target, {
      ok,
      errorCode: code ? code : undefined,
      latencyMs,
      ttftMs: ttftMs ?? undefined,
      usage: result.usage ? result.usage : undefined,
    });
  }
}

/**
 * One request's walk over its candidates. Per-request state lives in fields
 * and the steps are methods, so the common path (first target answers,
 * breaker closed, no hedging) allocates this object, one candidate and the
 * attempt's context, and awaits no breaker.
 */
class TargetWalk<T extends { attempt: Attempt }, Input> {
  readonly #route: ModelRoute;
  readonly #options: DispatchOptions;
  readonly #call: AttemptCall<T, Input>;
  /** Releases a result that lost a hedge race by a hair (ended its attempt already). */
  readonly #discard: (value: T) => void;
  readonly #input: Input;
  readonly #targets: RouteTarget[];
  readonly #resilience: Resilience | undefined;
  readonly #report: DispatchReport;
  #next = 0;
  #launched = 0;
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
    this.#route = route;
    this.#options = options;
    this.#call = call;
    this.#discard = discard;
    this.#input = input;
    this.#targets = options.targets ?? route.targets;
    this.#resilience = options.resilience;
    this.#report = options.report ?? newDispatchReport();
  }

  async run(): Promise<T> {
    const options = this.#options;
    const resilience = this.#resilience;
    const retries = this.#route.config.retries;
    const hedging = this.#route.config.hedging;
    resilience?.budget.deposit();

    let current: Candidate | undefined;
    let retriesOnCurrent = 0;
    for (;;) {
      if (options.signal.aborted) throw new ClientClosedError();
      if (!current) {
        const taken = this.#takeNext();
        current = taken instanceof Promise ? await taken : taken;
        retriesOnCurrent = 0;
        if (!current) break;
      }
      const lease = this.#budgetLease();
      if (!lease) {
        await current.permit.release();
        break;
      }
      try {
        const canHedge = hedging.enabled && this.#next < this.#targets.length;
        return canHedge
          ? await this.#runHedged(current, lease)
          : await this.#runOne(current, options.signal, lease);
      } catch (error) {
        if (error instanceof ClientClosedError || options.signal.aborted) throw new ClientClosedError();
        const failure = asGatewayError(error);
        if (!failure.retryable) throw failure;
        this.#failures ??= [];
        this.#failures.push(failure);
        const moreCandidates = this.#next < this.#targets.length;
        const delay =
          retriesOnCurrent < retries.max && !(moreCandidates && targetLooksDown(failure.code))
            ? retryDelay(failure, retriesOnCurrent, {
                baseMs: retries.base_ms,
                capMs: retries.max_backoff_ms,
                maxRetryAfterMs: retries.max_retry_after_ms,
              })
            : undefined;
        if (delay !== undefined) {
          const target = current.target;
          try {
            await sleep(delay, options.signal);
          } catch {
            throw new ClientClosedError();
          }
          const breaker = resilience?.breaker(target.id);
          const permit = breaker ? (breaker.acquireIfClosed() ?? (await breaker.acquire())) : FREE;
          if (permit) {
            resilience?.metrics.retries.inc({ target: target.id, reason: failure.code });
            retriesOnCurrent++;
            current = new Candidate(target, permit, options.observer);
            continue;
          }
        }
        this.#report.fallbackReason = failure.code;
        if (moreCandidates) resilience?.metrics.fallbacks.inc({ reason: failure.code });
        current = undefined;
      }
    }
    if (options.signal.aborted) throw new ClientClosedError();
    throw finalError(this.#failures ?? [], this.#launched, this.#skippedOpen, this.#openRetryAfterMs);
  }

  /**
   * The next candidate the breakers let through (open ones are skipped), at
   * once while its breaker is closed; a promise only when a breaker must decide.
   */
  #takeNext(): Candidate | undefined | Promise<Candidate | undefined> {
    if (this.#next >= this.#targets.length) return undefined;
    const target = this.#targets[this.#next++]!;
    const breaker = this.#resilience?.breaker(target.id);
    if (!breaker) return new Candidate(target, FREE, this.#options.observer);
    const permit = breaker.acquireIfClosed();
    if (permit) return new Candidate(target, permit, this.#options.observer);
    return this.#acquireOrSkip(target, breaker);
  }

  async #acquireOrSkip(target: RouteTarget, breaker: CircuitBreaker): Promise<Candidate | undefined> {
    const permit = await breaker.acquire();
    if (permit) return new Candidate(target, permit, this.#options.observer);
    this.#skippedOpen++;
    const wait = breaker.retryAfterMs;
    if (wait > 0) this.#openRetryAfterMs = Math.min(this.#openRetryAfterMs ?? wait, wait);
    this.#report.fallbackReason ??= 'circuit_open';
    return this.#takeNext();
  }

  /** Every attempt after a request's first is extra upstream traffic and takes a lease from the shared budget. */
  #budgetLease(): RetryLease | undefined {
    const resilience = this.#resilience;
    if (this.#launched === 0 || !resilience) return FIRST_ATTEMPT;
    const lease = resilience.budget.tryAcquire();
    if (!lease) resilience.metrics.budgetExhausted.inc();
    return lease;
  }

  /** `#estimatedPromptTokens` as a value, for the observer (bound once per request, not per attempt). */
  readonly #promptTokensLazily = (): number => this.#estimatedPromptTokens();

  /** Computed once per request, and only if someone asks (capacity accounting, an abort's bill). */
  #estimatedPromptTokens(): number {
    this.#promptTokens ??= this.#options.estimatePromptTokens?.() ?? 0;
    return this.#promptTokens;
  }

  async #runOne(candidate: Candidate, signal: AbortSignal, lease: RetryLease): Promise<T> {
    const options = this.#options;
    const report = this.#report;
    const target = candidate.target;
    try {
      this.#launched++;
      report.attempts++;
      report.target = target.id;
      const attempt = options.recorder.attempt(target.provider.name, target.model);
      attempt.endListener = candidate;
      const ctx: AttemptContext = { signal, requestId: options.requestId, timeouts: this.#route.timeouts };
      const observer = options.observer;
      if (observer?.onAttemptStart) observer.onAttemptStart(target, this.#promptTokensLazily);
      const startedAt = performance.now();
      try {
        const value = await this.#call(target, ctx, attempt, this.#input);
        this.#resilience?.sketch(target.id).add(performance.now() - startedAt);
        return value;
      } catch (error) {
        if (options.signal.aborted || signal.aborted) {
          // The upstream may already have read (and will bill) the prompt.
          const prompt = this.#estimatedPromptTokens();
          const lost = !options.signal.aborted;
          attempt.end({
            status: lost ? 'hedge_lost' : 'client_closed',
            httpStatus: 499,
            errorCode: lost ? 'hedge_lost' : 'client_closed',
            usage: { prompt_tokens: prompt, completion_tokens: 0, total_tokens: prompt },
            usageSource: prompt > 0 ? 'estimated' : 'none',
          });
          throw lost ? new HedgeLostError() : new ClientClosedError();
        }
        const failure = asGatewayError(error);
        attempt.end({
          status: failure.code === 'upstream_timeout' ? 'timeout' : 'error',
          httpStatus: failure.status,
          errorCode: failure.code,
          usageSource: 'none',
        });
        // The breaker must know before the next attempt asks it.
        await candidate.settled;
        throw failure;
      }
    } finally {
      // The budget's floor counts extra attempts in flight: this one is over.
      lease.release();
    }
  }

  #hedgeDelay(target: RouteTarget): number {
    const route = this.#route;
    const delay = route.config.hedging.delay_ms;
    if (delay !== 'p95') return delay;
    // Until the target has a history, hedge at half the first-byte timeout.
    return (
      this.#resilience?.sketch(target.id).quantile(0.95) ??
      Math.max(1, Math.floor(route.timeouts.firstByteMs / 2))
    );
  }

  async #runHedged(first: Candidate, firstLease: RetryLease): Promise<T> {
    const resilience = this.#resilience;
    // The winner of a hedge race is not necessarily the last target launched.
    const launched: RouteTarget[] = [first.target];
    const { value, index } = await hedge<T>(
      (index, signal) => {
        if (index === 0) return this.#runOne(first, signal, firstLease);
        return (async () => {
          const taken = this.#takeNext();
          const candidate = taken instanceof Promise ? await taken : taken;
          if (!candidate) throw new HedgeLostError();
          const lease = this.#budgetLease();
          if (!lease) {
            await candidate.permit.release();
            this.#next--;
            throw new HedgeLostError();
          }
          resilience?.metrics.hedges.inc({ outcome: 'launched' });
          launched[index] = candidate.target;
          return this.#runOne(candidate, signal, lease);
        })();
      },
      {
        delayMs: this.#hedgeDelay(first.target),
        maxHedges: this.#route.config.hedging.max_hedges,
        signal: this.#options.signal,
        discard: (late) => this.#discard(late),
      },
    );
    if (index > 0) resilience?.metrics.hedges.inc({ outcome: 'won' });
    this.#report.target = launched[index]?.id ?? this.#report.target;
    return value;
  }
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

/** Ends the attempt of a result that lost a hedge race after it arrived, billing what it used. */
export function discardedUsage(
  attempt: Attempt,
  usage: Usage | undefined,
  usageSource: 'upstream' | 'estimated' | 'none' = usage ? 'upstream' : 'none',
): void {
  attempt.end({ status: 'hedge_lost', httpStatus: 499, errorCode: 'hedge_lost', usage, usageSource });
}

/**
 * What an embeddings answer bills (embeddings produce no completion tokens),
 * and where the counts came from: the upstream, the adapter's estimate
 * (`USAGE_ESTIMATED`, e.g. Gemini), or nowhere.
 */
export function embeddingUsage(response: EmbeddingResponse): {
  usage: Usage | undefined;
  source: 'upstream' | 'estimated' | 'none';
} {
  const usage = response.usage;
  if (!usage) return { usage: undefined, source: 'none' };
  return {
    // An OpenAI-compatible server may leave a count out: zero, never undefined, reaches the ledger.
    usage: {
      prompt_tokens: usage.prompt_tokens ?? 0,
      completion_tokens: 0,
      total_tokens: usage.total_tokens ?? 0,
    },
    source: response[USAGE_ESTIMATED] === true ? 'estimated' : 'upstream',
  };
}

/**
 * Any request through the dispatch machinery (breakers, retries, hedging,
 * ordered fallback): `call` runs one attempt on one target, so what is sent
 * may differ per target (an Anthropic body to an Anthropic target, a
 * translated one to the others). `discard` releases a result that lost a
 * hedge race by a hair.
 */
export function dispatchWith<T extends { attempt: Attempt }>(
  route: ModelRoute,
  options: DispatchOptions,
  call: AttemptCall<T>,
  discard: (late: T) => void,
): Promise<T> {
  return new TargetWalk(route, options, call, discard, undefined).run();
}

/** A stream counts as served once its first item arrived; a failure before that can still be retried or fall back. */
async function firstItem<Item>(
  opening: Promise<AsyncIterable<Item>>,
  attempt: Attempt,
): Promise<StreamStart<Item>> {
  const stream = await opening;
  const iterator = stream[Symbol.asyncIterator]();
  let first: IteratorResult<Item>;
  try {
    first = await iterator.next();
  } catch (error) {
    await iterator.return?.().catch(() => undefined);
    throw error;
  }
  if (first.done) throw new GatewayError('upstream_bad_response', 'Upstream stream ended without any chunk');
  return { attempt, first: first.value, rest: iterator };
}

function openFirstItem<Item>(
  target: RouteTarget,
  ctx: AttemptContext,
  attempt: Attempt,
  open: AttemptCall<AsyncIterable<Item>>,
): Promise<StreamStart<Item>> {
  return firstItem(open(target, ctx, attempt, undefined), attempt);
}

function discardStream<Item>(late: StreamStart<Item>): void {
  late.rest.return?.().catch(() => undefined);
  discardedUsage(late.attempt, undefined);
}

/**
 * A stream through the dispatch machinery: `open` starts one attempt's
 * stream, which counts as served only once its first item arrived, so a
 * failure before that can still be retried or fall back.
 */
export function dispatchStreamWith<Item>(
  route: ModelRoute,
  options: DispatchOptions,
  open: AttemptCall<AsyncIterable<Item>>,
): Promise<StreamStart<Item>> {
  return new TargetWalk(route, options, openFirstItem<Item>, discardStream<Item>, open).run();
}

async function chatOnce(
  target: RouteTarget,
  ctx: AttemptContext,
  attempt: Attempt,
  request: ChatRequest,
): Promise<{ completion: ChatCompletion; attempt: Attempt }> {
  const completion = await target.provider.chat({ ...request, model: target.model }, ctx);
  return { completion, attempt };
}

function discardChat(late: { completion: ChatCompletion; attempt: Attempt }): void {
  discardedUsage(late.attempt, late.completion.usage);
}

export function dispatchChat(
  route: ModelRoute,
  request: ChatRequest,
  options: DispatchOptions,
): Promise<{ completion: ChatCompletion; attempt: Attempt }> {
  return new TargetWalk(route, options, chatOnce, discardChat, request).run();
}

function openChatStream(
  target: RouteTarget,
  ctx: AttemptContext,
  attempt: Attempt,
  request: ChatRequest,
): Promise<StreamStart> {
  return firstItem(target.provider.streamChat({ ...request, model: target.model }, ctx), attempt);
}

export function dispatchChatStream(
  route: ModelRoute,
  request: ChatRequest,
  options: DispatchOptions,
): Promise<StreamStart> {
  return new TargetWalk(route, options, openChatStream, discardStream<ChatCompletionChunk>, request).run();
}

async function embedOnce(
  target: RouteTarget,
  ctx: AttemptContext,
  attempt: Attempt,
  request: EmbeddingRequest,
): Promise<{ response: EmbeddingResponse; attempt: Attempt }> {
  const response = await target.provider.embed({ ...request, model: target.model }, ctx);
  return { response, attempt };
}

function discardEmbedding(late: { response: EmbeddingResponse; attempt: Attempt }): void {
  const { usage, source } = embeddingUsage(late.response);
  discardedUsage(late.attempt, usage, source);
}

export function dispatchEmbeddings(
  route: ModelRoute,
  request: EmbeddingRequest,
  options: DispatchOptions,
): Promise<{ response: EmbeddingResponse; attempt: Attempt }> {
  return new TargetWalk(route, options, embedOnce, discardEmbedding, request).run();
}
