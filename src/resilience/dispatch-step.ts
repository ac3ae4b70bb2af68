/**
 * The one shape every dispatch wrapper has.
 *
 * Dispatch walks a request's candidate targets; for each it runs a chain of
 * steps, outermost first: retry → hedge → budget → breaker → the attempt.
 * Every step is a `Step`: it gets the request's state (one object per
 * request) and the attempt's slot (one object per attempt), and calls the
 * next step or not. A wrapper is a function from the next step to a step, so
 * chains are composed once (per process, not per request) and the library
 * composes its own from the same pieces:
 *
 *   const step = composeSteps([withRetry, withHedge, withBudget, withBreaker], attempt);
 *
 * Steps that refuse say so with an error the walk understands:
 * `CircuitOpenError` (skip this target, nothing was sent) and
 * `RetryBudgetExhaustedError` (stop: no more upstream traffic for this request).
 */
import { countsAgainstTarget, GatewayError } from '../core/errors.ts';
import type { Usage } from '../core/types.ts';
import type { AttemptObserver } from '../routing/attempt-observer.ts';
import type { ModelRoute, RouteTarget } from '../routing/model-table.ts';
import type { BreakerPermit, CircuitOpenError } from './circuit-breaker.ts';
import type { Resilience } from './resilience.ts';
import type { RetryLease } from './retry.ts';

/** What the steps read and tell about the request they serve (dispatch's per-request object). */
export interface DispatchState {
  readonly route: ModelRoute;
  /** The client's signal: aborted when it goes away. */
  readonly signal: AbortSignal;
  readonly resilience: Resilience | undefined;
  readonly observer: AttemptObserver | undefined;
  /** Upstream attempts started so far (retries and hedges included). */
  readonly launched: number;
  /** Whether another candidate is left for a fallback or a hedge. */
  hasMoreCandidates(): boolean;
  /** The next candidate (a hedge takes one), or undefined. */
  takeCandidate(): RouteTarget | undefined;
  /** Puts back the candidate last taken (a hedge that could not launch). */
  untakeCandidate(): void;
  /** A candidate skipped because its breaker is open. */
  skipped(error: CircuitOpenError): void;
  /** A failure a retry absorbed: the final error still considers it (e.g. every attempt rate limited). */
  failed(error: GatewayError): void;
  /** A retry on `target` after a failure with `code`; a hedge launched or won. */
  retried(target: RouteTarget, code: string): void;
  hedged(target: RouteTarget, outcome: 'launched' | 'won'): void;
  /** Releases a result that lost a hedge race after it arrived (its attempt is already over). */
  discardLate(late: unknown): void;
  /** Waits before a retry; rejects when `signal` aborts. Injectable for tests (a fake clock). */
  sleep(ms: number, signal: AbortSignal): Promise<void>;
}

export type Step<T> = (state: DispatchState, slot: AttemptSlot) => Promise<T>;
export type Wrapper = <T>(next: Step<T>) => Step<T>;

/** Wrappers outermost first around `inner`. */
export function composeSteps<T>(wrappers: readonly Wrapper[], inner: Step<T>): Step<T> {
  let step = inner;
  for (let i = wrappers.length - 1; i >= 0; i--) step = wrappers[i]!(step);
  return step;
}

/** An attempt's end as the slot needs it (the ledger's result, structurally). */
export interface SlotEnding {
  status: string;
  errorCode?: string | null | undefined;
  usage?: Usage | undefined;
}

const SETTLED: Promise<void> = Promise.resolve();

/** The permit of a target without a breaker. */
export const FREE_PERMIT: BreakerPermit = {
  probe: false,
  success: () => SETTLED,
  failure: () => SETTLED,
  release: () => SETTLED,
};

/** The lease of a request's first attempt, which the budget does not count. */
export const FREE_LEASE: RetryLease = { release: () => {} };

/**
 * One attempt on one target: the steps fill it in (the breaker's permit, the
 * budget's lease, a hedge's own signal) and it listens for the attempt's end
 * (which for a stream is when the stream ends, long after dispatch returned),
 * to settle the permit and tell the observer.
 */
export class AttemptSlot {
  readonly target: RouteTarget;
  signal: AbortSignal;
  permit: BreakerPermit = FREE_PERMIT;
  lease: RetryLease = FREE_LEASE;
  /** Launched by the hedge step (counted as a hedge once it is really sent). */
  hedge = false;
  /** The breaker's bookkeeping of the attempt; a failure waits for it before the next attempt. */
  settled: Promise<void> | undefined = undefined;
  readonly #observer: AttemptObserver | undefined;

  constructor(target: RouteTarget, signal: AbortSignal, observer: AttemptObserver | undefined) {
    this.target = target;
    this.signal = signal;
    this.#observer = observer;
  }

  attemptEnded(result: SlotEnding, latencyMs: number, ttftMs: number | null): void {
    const code = result.errorCode ?? undefined;
    const ok = result.status === 'ok';
    // Only failures the upstream itself produced count against the target (the error table's column).
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

/** The shared retry budget refused an attempt beyond the request's first: send nothing more. */
export class RetryBudgetExhaustedError extends Error {
  override readonly name = 'RetryBudgetExhaustedError';
  constructor() {
    super('the retry budget is exhausted');
  }
}

/** What a step caught, as a GatewayError: anything else is the gateway's own failure. */
export function asGatewayError(error: unknown): GatewayError {
  return GatewayError.is(error)
    ? error
    : new GatewayError('internal_error', 'Internal gateway error', { cause: error });
}
