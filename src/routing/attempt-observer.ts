/**
 * What dispatch tells the routing layer about each upstream attempt, so the
 * Router can keep capacity and latency statistics. One type for both sides:
 * dispatch reports, the Router (or a library user's own observer) listens.
 */
import type { Usage } from '../core/types.ts';
import type { RouteTarget } from './model-table.ts';

/** What one attempt did. */
export interface AttemptOutcome {
  ok: boolean;
  errorCode?: string | undefined;
  latencyMs: number;
  ttftMs?: number | undefined;
  usage?: Usage | undefined;
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
