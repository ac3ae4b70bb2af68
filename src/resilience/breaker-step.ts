/**
 * The circuit-breaker step: an attempt goes only with its target breaker's
 * permit. While the breaker is closed the permit is taken at once (no promise:
 * this is every request's path); otherwise the breaker decides (a half-open
 * probe may be shared through Redis), and a refusal is a `CircuitOpenError`:
 * the walk skips the target, nothing was sent. The slot settles the permit
 * when the attempt ends.
 */
import { CircuitOpenError } from './circuit-breaker.ts';
import type { AttemptSlot, DispatchState, Step, Wrapper } from './dispatch-step.ts';

export const withBreaker: Wrapper =
  <T>(next: Step<T>): Step<T> =>
  (state: DispatchState, slot: AttemptSlot): Promise<T> => {
    const breaker = state.resilience?.breaker(slot.target.id);
    if (!breaker) return next(state, slot);
    const permit = breaker.acquireIfClosed();
    if (permit) {
      slot.permit = permit;
      return next(state, slot);
    }
    return breaker.acquire().then((granted) => {
      if (!granted) throw new CircuitOpenError(slot.target.id, breaker.retryAfterMs || undefined);
      slot.permit = granted;
      return next(state, slot);
    });
  };
