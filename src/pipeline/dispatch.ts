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
import { GatewayError } from '../core/errors.ts';
import type {
  ChatCompletion,
  ChatCompletionChunk,
  ChatRequest,
  EmbeddingRequest,
  EmbeddingResponse,
  Usage,
} from '../core/types.ts';
import type { AttemptContext } from '../providers/types.ts';
import { type BreakerPermit, countsAgainstTarget } from '../resilience/circuit-breaker.ts';
import { HedgeLostError, hedge } from '../resilience/hedge.ts';
import type { Resilience } from '../resilience/resilience.ts';
import { type RetryLease, retryDelay, sleep } from '../resilience/retry.ts';
import type { ModelRoute, RouteTarget } from './models.ts';
import type { Attempt, UsageRecorder } from './usage-recorder.ts';

/** What one attempt did, for the router's latency and capacity statistics. */
export interface AttemptOutcome {
  ok: boolean;
  errorCode?: string;
  latencyMs: number;
  ttftMs?: number;
  usage?: Usage;
}

export interface AttemptObserver {
  /** Before the attempt is sent: capacity accounting counts it from here. */
  onAttemptStart?(target: RouteTarget, estimatedTokens: number): void;
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

/** Thrown when the client went away; not an upstream failure. */
export class ClientClosedError extends Error {
  override readonly name = 'ClientClosedError';
  constructor() {
    super('client closed the connection');
  }
}

export function newDispatchReport(): DispatchReport {
  return { target: undefined, attempts: 0, fallbackReason: undefined };
}

/** One attempt on one target; `attempt` is its ledger entry, ended by the caller on success. */
export type AttemptCall<T> = (target: RouteTarget, ctx: AttemptContext, attempt: Attempt) => Promise<T>;

interface Candidate {
  target: RouteTarget;
  permit: BreakerPermit;
}

/** The permit of a target without a breaker. */
const FREE: BreakerPermit = {
  probe: false,
  success: () => Promise.resolve(),
  failure: () => Promise.resolve(),
  release: () => Promise.resolve(),
};

/** The lease of a request's first attempt, which the budget does not count. */
const FIRST_ATTEMPT: RetryLease = { release: () => {} };

/** Failures after which the same target is unlikely to do better at once: try the next one first. */
function targetLooksDown(code: string): boolean {
  return code === 'upstream_timeout' || code === 'upstream_connect_failed';
}

async function tryTargets<T extends { attempt: Attempt }>(
  route: ModelRoute,
  options: DispatchOptions,
  call: AttemptCall<T>,
  /** Releases a result that lost a hedge race by a hair (ended its attempt already). */
  discard: (value: T) => void,
): Promise<T> {
  const targets = options.targets ?? route.targets;
  const resilience = options.resilience;
  const report = options.report ?? newDispatchReport();
  const retries = route.config.retries;
  const hedging = route.config.hedging;
  const backoff = {
    baseMs: retries.base_ms,
    capMs: retries.max_backoff_ms,
    maxRetryAfterMs: retries.max_retry_after_ms,
  };
  resilience?.budget.deposit();

  let next = 0;
  let launched = 0;
  let skippedOpen = 0;
  let openRetryAfterMs: number | undefined;
  const failures: GatewayError[] = [];
  // The winner of a hedge race is not necessarily the last target launched.
  const servedBy = new WeakMap<Attempt, RouteTarget>();

  const clientClosed = (): ClientClosedError => new ClientClosedError();

  /** Candidates the breakers let through, in order; open ones are skipped. */
  const takeNext = async (): Promise<Candidate | undefined> => {
    while (next < targets.length) {
      const target = targets[next++]!;
      const breaker = resilience?.breaker(target.id);
      if (!breaker) return { target, permit: FREE };
      const permit = await breaker.acquire();
      if (permit) return { target, permit };
      skippedOpen++;
      const wait = breaker.retryAfterMs;
      if (wait > 0) openRetryAfterMs = Math.min(openRetryAfterMs ?? wait, wait);
      report.fallbackReason ??= 'circuit_open';
    }
    return undefined;
  };

  /** Every attempt after a request's first is extra upstream traffic and takes a lease from the shared budget. */
  const budgetLease = (): RetryLease | undefined => {
    if (launched === 0 || !resilience) return FIRST_ATTEMPT;
    const lease = resilience.budget.tryAcquire();
    if (!lease) resilience.metrics.budgetExhausted.inc();
    return lease;
  };

  const runOne = async (candidate: Candidate, signal: AbortSignal, lease: RetryLease): Promise<T> => {
    try {
      return await runAttempt(candidate, signal);
    } finally {
      // The budget's floor counts extra attempts in flight: this one is over.
      lease.release();
    }
  };

  const runAttempt = async (candidate: Candidate, signal: AbortSignal): Promise<T> => {
    const { target, permit } = candidate;
    launched++;
    report.attempts++;
    report.target = target.id;
    const attempt = options.recorder.attempt(target.provider.name, target.model);
    servedBy.set(attempt, target);
    let settled: Promise<void> | undefined;
    attempt.onEnd = (result, latencyMs, ttftMs) => {
      const code = result.errorCode ?? undefined;
      settled =
        result.status === 'ok'
          ? permit.success()
          : countsAgainstTarget(code)
            ? permit.failure()
            : permit.release();
      options.observer?.onAttemptEnd(target, {
        ok: result.status === 'ok',
        ...(code ? { errorCode: code } : {}),
        latencyMs,
        ...(ttftMs !== null ? { ttftMs } : {}),
        ...(result.usage ? { usage: result.usage } : {}),
      });
    };
    const ctx: AttemptContext = { signal, requestId: options.requestId, timeouts: route.timeouts };
    options.observer?.onAttemptStart?.(target, options.estimatePromptTokens?.() ?? 0);
    const startedAt = performance.now();
    try {
      const value = await call(target, ctx, attempt);
      resilience?.sketch(target.id).add(performance.now() - startedAt);
      return value;
    } catch (error) {
      if (options.signal.aborted || signal.aborted) {
        // The upstream may already have read (and will bill) the prompt.
        const prompt = options.estimatePromptTokens?.() ?? 0;
        const lost = !options.signal.aborted;
        attempt.end({
          status: lost ? 'hedge_lost' : 'client_closed',
          httpStatus: 499,
          errorCode: lost ? 'hedge_lost' : 'client_closed',
          usage: { prompt_tokens: prompt, completion_tokens: 0, total_tokens: prompt },
          usageSource: prompt > 0 ? 'estimated' : 'none',
        });
        throw lost ? new HedgeLostError() : clientClosed();
      }
      const failure = GatewayError.is(error)
        ? error
        : new GatewayError('upstream_error', 'Upstream call failed', { cause: error });
      attempt.end({
        status: failure.code === 'upstream_timeout' ? 'timeout' : 'error',
        httpStatus: failure.status,
        errorCode: failure.code,
        usageSource: 'none',
      });
      // The breaker must know before the next attempt asks it.
      await settled;
      throw failure;
    }
  };

  const hedgeDelay = (target: RouteTarget): number => {
    if (hedging.delay_ms !== 'p95') return hedging.delay_ms;
    // Until the target has a history, hedge at half the first-byte timeout.
    return (
      resilience?.sketch(target.id).quantile(0.95) ?? Math.max(1, Math.floor(route.timeouts.firstByteMs / 2))
    );
  };

  const runHedged = async (first: Candidate, firstLease: RetryLease): Promise<T> => {
    const { value, index } = await hedge<T>(
      (index, signal) => {
        if (index === 0) return runOne(first, signal, firstLease);
        return (async () => {
          const candidate = await takeNext();
          if (!candidate) throw new HedgeLostError();
          const lease = budgetLease();
          if (!lease) {
            await candidate.permit.release();
            next--;
            throw new HedgeLostError();
          }
          resilience?.metrics.hedges.inc({ outcome: 'launched' });
          return runOne(candidate, signal, lease);
        })();
      },
      {
        delayMs: hedgeDelay(first.target),
        maxHedges: hedging.max_hedges,
        signal: options.signal,
        discard: (late) => discard(late),
      },
    );
    if (index > 0) resilience?.metrics.hedges.inc({ outcome: 'won' });
    return value;
  };

  let current: Candidate | undefined;
  let retriesOnCurrent = 0;
  for (;;) {
    if (options.signal.aborted) throw clientClosed();
    if (!current) {
      current = await takeNext();
      retriesOnCurrent = 0;
      if (!current) break;
    }
    const lease = budgetLease();
    if (!lease) {
      await current.permit.release();
      break;
    }
    try {
      const canHedge = hedging.enabled && next < targets.length;
      const value = canHedge ? await runHedged(current, lease) : await runOne(current, options.signal, lease);
      report.target = servedBy.get(value.attempt)?.id ?? report.target;
      return value;
    } catch (error) {
      if (error instanceof ClientClosedError || options.signal.aborted) throw clientClosed();
      const failure = GatewayError.is(error)
        ? error
        : new GatewayError('upstream_error', 'Upstream call failed', { cause: error });
      if (!failure.retryable) throw failure;
      failures.push(failure);
      const moreCandidates = next < targets.length;
      const delay =
        retriesOnCurrent < retries.max && !(moreCandidates && targetLooksDown(failure.code))
          ? retryDelay(failure, retriesOnCurrent, backoff)
          : undefined;
      if (delay !== undefined) {
        const target = current.target;
        try {
          await sleep(delay, options.signal);
        } catch {
          throw clientClosed();
        }
        const breaker = resilience?.breaker(target.id);
        const permit = breaker ? await breaker.acquire() : FREE;
        if (permit) {
          resilience?.metrics.retries.inc({ target: target.id, reason: failure.code });
          retriesOnCurrent++;
          current = { target, permit };
          continue;
        }
      }
      report.fallbackReason = failure.code;
      if (moreCandidates) resilience?.metrics.fallbacks.inc({ reason: failure.code });
      current = undefined;
    }
  }
  if (options.signal.aborted) throw clientClosed();
  throw finalError(failures, launched, skippedOpen, openRetryAfterMs);
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
export function discardedUsage(attempt: Attempt, usage: Usage | undefined): void {
  attempt.end({
    status: 'hedge_lost',
    httpStatus: 499,
    errorCode: 'hedge_lost',
    usage,
    usageSource: usage ? 'upstream' : 'none',
  });
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
  return tryTargets(route, options, call, discard);
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
  return tryTargets(
    route,
    options,
    async (target, ctx, attempt) => {
      const stream = await open(target, ctx, attempt);
      const iterator = stream[Symbol.asyncIterator]();
      let first: IteratorResult<Item>;
      try {
        first = await iterator.next();
      } catch (error) {
        await iterator.return?.().catch(() => undefined);
        throw error;
      }
      if (first.done)
        throw new GatewayError('upstream_bad_response', 'Upstream stream ended without any chunk');
      return { attempt, first: first.value, rest: iterator };
    },
    (late) => {
      late.rest.return?.().catch(() => undefined);
      discardedUsage(late.attempt, undefined);
    },
  );
}

export function dispatchChat(
  route: ModelRoute,
  request: ChatRequest,
  options: DispatchOptions,
): Promise<{ completion: ChatCompletion; attempt: Attempt }> {
  return dispatchWith(
    route,
    options,
    async (target, ctx, attempt) => {
      const completion = await target.provider.chat({ ...request, model: target.model }, ctx);
      return { completion, attempt };
    },
    (late) => discardedUsage(late.attempt, late.completion.usage),
  );
}

export function dispatchChatStream(
  route: ModelRoute,
  request: ChatRequest,
  options: DispatchOptions,
): Promise<StreamStart> {
  return dispatchStreamWith(route, options, (target, ctx) =>
    target.provider.streamChat({ ...request, model: target.model }, ctx),
  );
}

export function dispatchEmbeddings(
  route: ModelRoute,
  request: EmbeddingRequest,
  options: DispatchOptions,
): Promise<{ response: EmbeddingResponse; attempt: Attempt }> {
  return dispatchWith(
    route,
    options,
    async (target, ctx, attempt) => {
      const response = await target.provider.embed({ ...request, model: target.model }, ctx);
      return { response, attempt };
    },
    (late) => {
      const usage = late.response.usage;
      discardedUsage(
        late.attempt,
        usage
          ? { prompt_tokens: usage.prompt_tokens, completion_tokens: 0, total_tokens: usage.total_tokens }
          : undefined,
      );
    },
  );
}
