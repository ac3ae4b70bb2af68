/**
 * The retry step: a retryable failure is tried again on the same target,
 * after a full-jitter backoff that honours the upstream's Retry-After (up to
 * `max_retry_after_ms`), at most `retries.max` times, each retry with a fresh
 * slot (the breaker must admit it and the budget pay for it). A failure after
 * which the same target is unlikely to do better at once (a timeout, a
 * refused connection) is not retried while another candidate is left: the
 * walk falls back instead.
 *
 * A retry the breaker or the budget refuses ends the retries with the failure
 * that caused them, so the walk falls back (or stops) on that failure.
 */
import { ClientClosedError, type GatewayError } from '../core/errors.ts';
import { CircuitOpenError } from './circuit-breaker.ts';
import {
  AttemptSlot,
  asGatewayError,
  type DispatchState,
  RetryBudgetExhaustedError,
  type Step,
  type Wrapper,
} from './dispatch-step.ts';
import { HedgeLostError } from './hedge.ts';
import { retryDelay } from './retry.ts';

/** Failures after which the same target is unlikely to do better at once: try the next one first. */
function targetLooksDown(code: string): boolean {
  return code === 'upstream_timeout' || code === 'upstream_connect_failed';
}

export const withRetry: Wrapper =
  <T>(next: Step<T>): Step<T> =>
  (state: DispatchState, slot: AttemptSlot): Promise<T> =>
    // The first attempt pays for no async frame: most requests never need the loop.
    next(state, slot).catch((error: unknown) => retryAfter(error, state, slot, next));

/** The retry loop, entered on the first attempt's failure. */
async function retryAfter<T>(
  error: unknown,
  state: DispatchState,
  first: AttemptSlot,
  next: Step<T>,
): Promise<T> {
  const retries = state.route.config.retries;
  let slot = first;
  let failure: GatewayError | undefined;
  let caught = error;
  for (let retry = 0; ; retry++) {
    // A refused retry ends retrying with the failure that caused it.
    if (failure && (caught instanceof CircuitOpenError || caught instanceof RetryBudgetExhaustedError)) {
      throw failure;
    }
    if (caught instanceof ClientClosedError || state.signal.aborted || !isFailure(caught)) throw caught;
    failure = asGatewayError(caught);
    const delay =
      failure.retryable &&
      retry < retries.max &&
      !(state.hasMoreCandidates() && targetLooksDown(failure.code))
        ? retryDelay(failure, retry, {
            baseMs: retries.base_ms,
            capMs: retries.max_backoff_ms,
            maxRetryAfterMs: retries.max_retry_after_ms,
          })
        : undefined;
    if (delay === undefined) throw failure;
    state.failed(failure);
    try {
      await state.sleep(delay, state.signal);
    } catch {
      throw new ClientClosedError();
    }
    state.retried(slot.target, failure.code);
    slot = new AttemptSlot(slot.target, state.signal, state.observer);
    try {
      return await next(state, slot);
    } catch (again) {
      caught = again;
    }
  }
}

/** Refusals and hedge losses pass through untouched: they are not failures of this target. */
function isFailure(error: unknown): boolean {
  return !(
    error instanceof CircuitOpenError ||
    error instanceof RetryBudgetExhaustedError ||
    error instanceof HedgeLostError
  );
}
