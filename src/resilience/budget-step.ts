/**
 * The retry-budget step: a request's first attempt is free; every attempt
 * after it (a retry, a fallback, a hedge) is extra upstream traffic and needs
 * a lease from the shared budget (retry.ts), held while the attempt runs. A
 * refusal is a `RetryBudgetExhaustedError`: the walk sends nothing more.
 */
import {
  type AttemptSlot,
  type DispatchState,
  RetryBudgetExhaustedError,
  type Step,
  type Wrapper,
} from './dispatch-step.ts';

export const withBudget: Wrapper =
  <T>(next: Step<T>): Step<T> =>
  (state: DispatchState, slot: AttemptSlot): Promise<T> => {
    const resilience = state.resilience;
    if (state.launched === 0 || !resilience) return next(state, slot);
    const lease = resilience.budget.tryAcquire();
    if (!lease) {
      resilience.metrics.budgetExhausted.inc();
      return Promise.reject(new RetryBudgetExhaustedError());
    }
    slot.lease = lease;
    // The budget's floor counts extra attempts in flight: released when this one is over.
    return next(state, slot).finally(() => lease.release());
  };
