/**
 * The spend windows of a budget object at a time: the UTC day, the UTC
 * calendar month, and all time, each with its cap in micro-dollars (the
 * ledger's unit, so caps and `cost_micros` add up exactly).
 */
import type { BudgetConfig } from '../config/limits-schema.ts';

export type BudgetPeriodKind = 'day' | 'month' | 'total';

export interface BudgetPeriod {
  readonly kind: BudgetPeriodKind;
  /** `day:2026-12-01`, `month:2026-12`, `total`: names the window's counter. */
  readonly id: string;
  readonly startMs: number;
  /** When the window closes (Infinity for `total`). */
  readonly endMs: number;
  readonly limitMicros: number;
}

export const PERIOD_KINDS: readonly BudgetPeriodKind[] = ['day', 'month', 'total'];

const FIELD: Record<BudgetPeriodKind, keyof BudgetConfig> = {
  day: 'daily_usd',
  month: 'monthly_usd',
  total: 'total_usd',
};

/** Each budget object's windows, kept while `at` stays inside all of them (every request asks). */
const lastPeriods = new WeakMap<BudgetConfig, { from: number; until: number; periods: BudgetPeriod[] }>();

/** The windows `budget` caps at time `at`, day first. */
export function budgetPeriods(budget: BudgetConfig, at: number): readonly BudgetPeriod[] {
  const last = lastPeriods.get(budget);
  if (last !== undefined && at >= last.from && at < last.until) return last.periods;
  const periods = periodsAt(budget, at);
  let from = 0;
  let until = Number.POSITIVE_INFINITY;
  for (const period of periods) {
    from = Math.max(from, period.startMs);
    until = Math.min(until, period.endMs);
  }
  lastPeriods.set(budget, { from, until, periods });
  return periods;
}

function periodsAt(budget: BudgetConfig, at: number): BudgetPeriod[] {
  const periods: BudgetPeriod[] = [];
  const date = new Date(at);
  for (const kind of PERIOD_KINDS) {
    const usd = budget[FIELD[kind]];
    if (usd === undefined) continue;
    const limitMicros = Math.round(usd * 1_000_000);
    if (kind === 'day') {
      const startMs = Date.UTC(date.getUTCFullYear(), date.getUTCMonth(), date.getUTCDate());
      const id = `day:${new Date(startMs).toISOString().slice(0, 10)}`;
      periods.push({ kind, id, startMs, endMs: startMs + 86_400_000, limitMicros });
    } else if (kind === 'month') {
      const startMs = Date.UTC(date.getUTCFullYear(), date.getUTCMonth(), 1);
      const endMs = Date.UTC(date.getUTCFullYear(), date.getUTCMonth() + 1, 1);
      periods.push({
        kind,
        id: `month:${new Date(startMs).toISOString().slice(0, 7)}`,
        startMs,
        endMs,
        limitMicros,
      });
    } else {
      periods.push({ kind, id: 'total', startMs: 0, endMs: Number.POSITIVE_INFINITY, limitMicros });
    }
  }
  return periods;
}
