/**
 * Spend caps for any subject (a key, a team, an end user), usable in-process
 * or across instances: `reserve` holds a request's estimated cost in every
 * window of the budget before any upstream call (refused when a window has no
 * room), `settle` replaces the estimate with the real cost when it ends. When
 * a window's spend crosses `alertAt` (80% by default) the `onAlert` callback
 * is told, once per window (fleet-wide with a Redis store).
 *
 * A store that fails admits the request (told to `onStoreError`), as rate
 * limits do; the ledger keeps every cost regardless.
 */
import type { BudgetConfig } from '../config/limits-schema.ts';
import { type BudgetPeriod, budgetPeriods } from './budget-periods.ts';
import type { BudgetStore, PeriodState, SpendSeed } from './budget-store.ts';

export interface BudgetReservation {
  readonly subject: string;
  readonly admitted: boolean;
  readonly periods: readonly BudgetPeriod[];
  readonly amountMicros: number;
  /** Each window's counters after the decision (the refusing one alone when refused; none when the store failed). */
  readonly states: readonly PeriodState[];
  readonly refusedBy: BudgetPeriod | undefined;
  /** Made without the store (it failed): settling it asks nothing of the store. */
  readonly unchecked: boolean;
}

export interface BudgetAlert {
  readonly subject: string;
  readonly period: BudgetPeriod;
  readonly spentMicros: number;
  /** spent / cap, at the moment the threshold was crossed. */
  readonly fraction: number;
}

export interface BudgetGuardOptions {
  /** What the ledger says a subject spent in a window (seeds its counter). */
  seed: SpendSeed;
  onAlert?: (alert: BudgetAlert) => void;
  onStoreError?: (error: unknown) => void;
  /** Fraction of a window's cap that raises the alert (default 0.8). */
  alertAt?: number;
  now?: () => number;
}

export class BudgetGuard {
  readonly #store: BudgetStore;
  readonly #seed: SpendSeed;
  readonly #onAlert: (alert: BudgetAlert) => void;
  readonly #onStoreError: (error: unknown) => void;
  readonly #alertAt: number;
  readonly #now: () => number;

  constructor(store: BudgetStore, options: BudgetGuardOptions) {
    this.#store = store;
    this.#seed = options.seed;
    this.#onAlert = options.onAlert ?? (() => {});
    this.#onStoreError = options.onStoreError ?? (() => {});
    this.#alertAt = options.alertAt ?? 0.8;
    this.#now = options.now ?? Date.now;
  }

  /** Holds `estimateMicros` against `subject`'s budget; undefined when the budget caps nothing. */
  async reserve(
    subject: string,
    budget: BudgetConfig,
    estimateMicros: number,
  ): Promise<BudgetReservation | undefined> {
    const periods = budgetPeriods(budget, this.#now());
    if (periods.length === 0) return undefined;
    const amountMicros = Math.max(0, Math.ceil(estimateMicros));
    try {
      const decision = await this.#store.reserve(subject, periods, amountMicros, this.#seed);
      return { subject, periods, amountMicros, ...decision, unchecked: false };
    } catch (error) {
      this.#onStoreError(error);
      return {
        subject,
        admitted: true,
        periods,
        amountMicros,
        states: [],
        refusedBy: undefined,
        unchecked: true,
      };
    }
  }

  /** Whether the store answers in the tick (in this process): `reserveNow` and `settleNow` may be used. */
  get inProcess(): boolean {
    return this.#store.reserveNow !== undefined && this.#store.settleNow !== undefined;
  }

  /**
   * `reserve`, answered in the tick by an in-process store; null when a window
   * has yet to be seeded from the ledger (ask `reserve`).
   */
  reserveNow(
    subject: string,
    budget: BudgetConfig,
    estimateMicros: number,
  ): BudgetReservation | undefined | null {
    const periods = budgetPeriods(budget, this.#now());
    if (periods.length === 0) return undefined;
    const amountMicros = Math.max(0, Math.ceil(estimateMicros));
    const decision = this.#store.reserveNow!(subject, periods, amountMicros);
    if (decision === undefined) return null;
    return { subject, periods, amountMicros, ...decision, unchecked: false };
  }

  /** The request ended having cost `actualMicros`: its reservation becomes that spend; alerts a window crossing the threshold. */
  async settle(reservation: BudgetReservation, actualMicros: number): Promise<void> {
    if (!reservation.admitted || reservation.unchecked) return;
    try {
      const states = await this.#store.settle(
        reservation.subject,
        reservation.periods,
        reservation.amountMicros,
        Math.max(0, Math.round(actualMicros)),
      );
      await this.#alert(reservation.subject, states);
    } catch (error) {
      this.#onStoreError(error);
    }
  }

  /** `settle`, done in the tick by an in-process store (an alert, when one is due, is still claimed asynchronously). */
  settleNow(reservation: BudgetReservation, actualMicros: number): void {
    if (!reservation.admitted || reservation.unchecked) return;
    const states = this.#store.settleNow!(
      reservation.subject,
      reservation.periods,
      reservation.amountMicros,
      Math.max(0, Math.round(actualMicros)),
    );
    if (states.some((state) => state.spentMicros / state.period.limitMicros >= this.#alertAt)) {
      this.#alert(reservation.subject, states).catch((error: unknown) => this.#onStoreError(error));
    }
  }

  /** Tells `onAlert` of each window whose spend is past the threshold, once per window. */
  async #alert(subject: string, states: readonly PeriodState[]): Promise<void> {
    for (const state of states) {
      const fraction = state.spentMicros / state.period.limitMicros;
      if (fraction < this.#alertAt) continue;
      if (await this.#store.claimAlert(subject, state.period, `at-${this.#alertAt}`)) {
        this.#onAlert({ subject, period: state.period, spentMicros: state.spentMicros, fraction });
      }
    }
  }
}
