/**
 * Where budget windows are counted: spent (settled, real cost) and reserved
 * (in flight, estimated) micro-dollars per subject and window, in this
 * process or in Redis (every instance in the same counters).
 *
 * A request is admitted only if, in every window, nothing is over and its
 * reservation fits beside what is spent and reserved: so a burst of requests
 * racing for the last of a budget gets exactly what fits, whichever instance
 * each lands on. A window's counter starts from what the ledger says was spent
 * in it (`seed`), the first time an instance (or, with Redis, any instance)
 * needs it.
 */
import type { BudgetPeriod } from './budget-periods.ts';

export interface PeriodState {
  readonly period: BudgetPeriod;
  readonly spentMicros: number;
  readonly reservedMicros: number;
}

export interface BudgetDecision {
  readonly admitted: boolean;
  /** Every window's counters after the decision (the reservation included when admitted). */
  readonly states: readonly PeriodState[];
  /** When refused: the window that had no room. */
  readonly refusedBy: BudgetPeriod | undefined;
}

/** What the ledger says `subject` spent in `period` so far, in micro-dollars. */
export type SpendSeed = (subject: string, period: BudgetPeriod) => Promise<number>;

export interface BudgetStore {
  reserve(
    subject: string,
    periods: readonly BudgetPeriod[],
    amountMicros: number,
    seed: SpendSeed,
  ): Promise<BudgetDecision>;
  /** Turns a reservation into real spend: `reservedMicros` released, `actualMicros` spent. Returns the windows' counters after. */
  settle(
    subject: string,
    periods: readonly BudgetPeriod[],
    reservedMicros: number,
    actualMicros: number,
  ): Promise<readonly PeriodState[]>;
  /** True for the first caller in `period` (an alert is sent once per window, fleet-wide with Redis). */
  claimAlert(subject: string, period: BudgetPeriod, name: string): Promise<boolean>;
  /**
   * `reserve` and `settle` answered in the tick, by a store in this process;
   * `reserveNow` is undefined when a window's counter has yet to be seeded
   * from the ledger (then `reserve` must be asked).
   */
  reserveNow?(
    subject: string,
    periods: readonly BudgetPeriod[],
    amountMicros: number,
  ): BudgetDecision | undefined;
  settleNow?(
    subject: string,
    periods: readonly BudgetPeriod[],
    reservedMicros: number,
    actualMicros: number,
  ): readonly PeriodState[];
}

/** Whether a window admits a reservation of `amount` (a window already at its cap admits nothing, not even a free request). */
export function fits(spent: number, reserved: number, amount: number, limit: number): boolean {
  return spent + reserved < limit && spent + reserved + amount <= limit;
}

/** How long a window's counter is kept: to its end and a day more (all time: kept). */
export function keepMs(period: BudgetPeriod, now: number): number {
  return Number.isFinite(period.endMs) ? Math.max(1_000, period.endMs - now + 86_400_000) : 0;
}

interface Counter {
  spent: number;
  reserved: number;
  expiresAt: number;
}

export class MemoryBudgetStore implements BudgetStore {
  /** By subject, then window id. */
  readonly #counters = new Map<string, Map<string, Counter>>();
  readonly #alerts = new Map<string, number>();
  readonly #now: () => number;
  #sweptAt = 0;

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  async reserve(
    subject: string,
    periods: readonly BudgetPeriod[],
    amountMicros: number,
    seed: SpendSeed,
  ): Promise<BudgetDecision> {
    const now = this.#now();
    for (const period of periods) {
      if (this.#live(subject, period, now) !== undefined) continue;
      const spent = await seed(subject, period);
      // Another request may have seeded it while this one awaited the ledger.
      if (this.#live(subject, period, this.#now()) !== undefined) continue;
      const keep = keepMs(period, now);
      let windows = this.#counters.get(subject);
      if (windows === undefined) {
        windows = new Map();
        this.#counters.set(subject, windows);
      }
      windows.set(period.id, {
        spent,
        reserved: 0,
        expiresAt: keep === 0 ? Number.POSITIVE_INFINITY : now + keep,
      });
    }
    // A window seeded above lapses before this only if the clock jumped past its end meanwhile: seed again.
    return (
      this.reserveNow(subject, periods, amountMicros) ?? this.reserve(subject, periods, amountMicros, seed)
    );
  }

  reserveNow(
    subject: string,
    periods: readonly BudgetPeriod[],
    amountMicros: number,
  ): BudgetDecision | undefined {
    const now = this.#now();
    this.#sweep(now);
    const counters: Counter[] = [];
    for (const period of periods) {
      const counter = this.#live(subject, period, now);
      if (counter === undefined) return undefined;
      counters.push(counter);
    }
    const refusedAt = counters.findIndex(
      (c, i) => !fits(c.spent, c.reserved, amountMicros, periods[i]!.limitMicros),
    );
    if (refusedAt === -1) for (const counter of counters) counter.reserved += amountMicros;
    return {
      admitted: refusedAt === -1,
      states: counters.map((c, i) => ({
        period: periods[i]!,
        spentMicros: c.spent,
        reservedMicros: c.reserved,
      })),
      refusedBy: refusedAt === -1 ? undefined : periods[refusedAt],
    };
  }

  async settle(
    subject: string,
    periods: readonly BudgetPeriod[],
    reservedMicros: number,
    actualMicros: number,
  ): Promise<readonly PeriodState[]> {
    return this.settleNow(subject, periods, reservedMicros, actualMicros);
  }

  settleNow(
    subject: string,
    periods: readonly BudgetPeriod[],
    reservedMicros: number,
    actualMicros: number,
  ): readonly PeriodState[] {
    const states: PeriodState[] = [];
    const windows = this.#counters.get(subject);
    for (const period of periods) {
      const counter = windows?.get(period.id);
      // A window forgotten since (it ended): its spend is in the ledger, which seeds the next.
      if (counter === undefined) continue;
      counter.reserved = Math.max(0, counter.reserved - reservedMicros);
      counter.spent += actualMicros;
      states.push({ period, spentMicros: counter.spent, reservedMicros: counter.reserved });
    }
    return states;
  }

  /** The window's counter, if it is seeded and not yet expired. */
  #live(subject: string, period: BudgetPeriod, now: number): Counter | undefined {
    const counter = this.#counters.get(subject)?.get(period.id);
    return counter !== undefined && counter.expiresAt > now ? counter : undefined;
  }

  /** Forgets counters and alert marks of windows long over, at most once a minute (memory stays bounded by the live ones). */
  #sweep(now: number): void {
    if (now - this.#sweptAt < 60_000) return;
    this.#sweptAt = now;
    for (const [subject, windows] of this.#counters) {
      for (const [id, counter] of windows) if (counter.expiresAt <= now) windows.delete(id);
      if (windows.size === 0) this.#counters.delete(subject);
    }
    for (const [id, until] of this.#alerts) if (until <= now) this.#alerts.delete(id);
  }

  async claimAlert(subject: string, period: BudgetPeriod, name: string): Promise<boolean> {
    const id = `${subject}|${period.id}|${name}`;
    const now = this.#now();
    if ((this.#alerts.get(id) ?? 0) > now) return false;
    const keep = keepMs(period, now);
    this.#alerts.set(id, keep === 0 ? Number.POSITIVE_INFINITY : now + keep);
    return true;
  }
}
