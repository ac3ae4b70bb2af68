/**
 * The hedge step: with hedging on and another candidate left, a slow attempt
 * races a second one on the next candidate (after `delay_ms`, or the target's
 * observed p95 first byte); the first to answer wins, the others are aborted
 * (hedge.ts). "Answer" is what dispatch resolves with, a stream's first chunk,
 * so nothing is hedged once the client got anything. A hedge whose candidate
 * the breaker or the budget refuses drops out and gives the candidate back
 * to the walk; a result that lost by a hair is handed to `state.discardLate`.
 */
import type { RouteTarget } from '../routing/model-table.ts';
import { CircuitOpenError } from './circuit-breaker.ts';
import {
  AttemptSlot,
  type DispatchState,
  RetryBudgetExhaustedError,
  type Step,
  type Wrapper,
} from './dispatch-step.ts';
import { HedgeLostError, hedge } from './hedge.ts';

export const withHedge: Wrapper =
  <T>(next: Step<T>): Step<T> =>
  (state: DispatchState, slot: AttemptSlot): Promise<T> => {
    if (!state.route.config.hedging.enabled || !state.hasMoreCandidates()) return next(state, slot);
    return race(state, slot, next);
  };

async function race<T>(state: DispatchState, first: AttemptSlot, next: Step<T>): Promise<T> {
  // The winner of a race is not necessarily the last target launched.
  const launched: RouteTarget[] = [first.target];
  const { value, index } = await hedge<T>(
    (index, signal) => {
      if (index === 0) {
        first.signal = signal;
        return next(state, first);
      }
      return launchHedge(state, next, signal, (target) => {
        launched[index] = target;
      });
    },
    {
      delayMs: delayFor(state, first.target),
      maxHedges: state.route.config.hedging.max_hedges,
      signal: state.signal,
      discard: (late) => state.discardLate(late),
    },
  );
  if (index > 0) state.hedged(launched[index]!, 'won');
  return value;
}

/** The next candidate the breaker admits, as a hedge; none left (or no budget): the hedge drops out. */
async function launchHedge<T>(
  state: DispatchState,
  next: Step<T>,
  signal: AbortSignal,
  onLaunch: (target: RouteTarget) => void,
): Promise<T> {
  for (;;) {
    const target = state.takeCandidate();
    if (!target) throw new HedgeLostError();
    try {
      const slot = new AttemptSlot(target, signal, state.observer);
      slot.hedge = true;
      onLaunch(target);
      return await next(state, slot);
    } catch (error) {
      if (error instanceof CircuitOpenError) {
        state.skipped(error);
        continue;
      }
      if (error instanceof RetryBudgetExhaustedError) {
        state.untakeCandidate();
        throw new HedgeLostError();
      }
      throw error;
    }
  }
}

function delayFor(state: DispatchState, target: RouteTarget): number {
  const route = state.route;
  const delay = route.config.hedging.delay_ms;
  if (delay !== 'p95') return delay;
  // Until the target has a history, hedge at half the first-byte timeout.
  return (
    state.resilience?.sketch(target.id).quantile(0.95) ??
    Math.max(1, Math.floor(route.timeouts.firstByteMs / 2))
  );
}
