/**
 * Budget windows in Redis: every instance reserves and settles in the same
 * counters (src/store/lua/budget-reserve-3.lua, budget-settle-3.lua), so a
 * burst spread over the fleet spends at most what the budget allows. A
 * window's counter is seeded once from the ledger (HSETNX: the first seed
 * wins, a racing one changes nothing) and kept until a day after it ends.
 */
import { assertRedisReady, type RedisConnection } from '../store/redis.ts';
import type { RedisKeys } from '../store/redis-keys.ts';
import { defineScript, type ScriptCall } from '../store/redis-scripts.ts';
import { type BudgetPeriod, type BudgetPeriodKind, PERIOD_KINDS } from './budget-periods.ts';
import {
  type BudgetDecision,
  type BudgetStore,
  keepMs,
  type PeriodState,
  type SpendSeed,
} from './budget-store.ts';

/** Seeding then reserving again can lose to another seed at most once per window. */
const MAX_SEEDS = PERIOD_KINDS.length + 1;

export class RedisBudgetStore implements BudgetStore {
  readonly #redis: RedisConnection;
  readonly #keys: RedisKeys;
  readonly #reserve: ScriptCall;
  readonly #settle: ScriptCall;

  constructor(redis: RedisConnection, keys: RedisKeys) {
    this.#redis = redis;
    this.#keys = keys;
    this.#reserve = defineScript(redis, 'budget-reserve-3');
    this.#settle = defineScript(redis, 'budget-settle-3');
  }

  async reserve(
    subject: string,
    periods: readonly BudgetPeriod[],
    amountMicros: number,
    seed: SpendSeed,
  ): Promise<BudgetDecision> {
    assertRedisReady(this.#redis);
    const slots = this.#slots(subject, periods);
    const limits = slots.map((slot) => (slot.period === undefined ? -1 : slot.period.limitMicros));
    for (let seeds = 0; seeds <= MAX_SEEDS; seeds++) {
      const reply = (await this.#reserve(
        slots.map((slot) => slot.key),
        [Math.round(amountMicros), ...limits],
      )) as number[];
      if (reply[0] === -1) {
        const slot = slots[reply[1]! - 1]!;
        const spent = await seed(subject, slot.period!);
        const keep = keepMs(slot.period!, Date.now());
        const pipeline = this.#redis.multi().hsetnx(slot.key, 'spent', Math.round(spent));
        if (keep > 0) pipeline.pexpire(slot.key, keep);
        await pipeline.exec();
        continue;
      }
      if (reply[0] === 0) {
        const refused = slots[reply[1]! - 1]!.period!;
        return {
          admitted: false,
          refusedBy: refused,
          states: [{ period: refused, spentMicros: Number(reply[2]), reservedMicros: Number(reply[3]) }],
        };
      }
      const states: PeriodState[] = [];
      slots.forEach((slot, i) => {
        if (slot.period !== undefined) {
          states.push({
            period: slot.period,
            spentMicros: Number(reply[1 + i * 2]),
            reservedMicros: Number(reply[2 + i * 2]),
          });
        }
      });
      return { admitted: true, refusedBy: undefined, states };
    }
    throw new Error('budget counters kept disappearing while being seeded');
  }

  async settle(
    subject: string,
    periods: readonly BudgetPeriod[],
    reservedMicros: number,
    actualMicros: number,
  ): Promise<readonly PeriodState[]> {
    const slots = this.#slots(subject, periods);
    const used = slots.map((slot) => (slot.period === undefined ? '0' : '1')).join('');
    const reply = (await this.#settle(
      slots.map((slot) => slot.key),
      [Math.round(reservedMicros), Math.round(actualMicros), used],
    )) as number[];
    const states: PeriodState[] = [];
    slots.forEach((slot, i) => {
      const spent = Number(reply[i]);
      if (slot.period !== undefined && spent >= 0)
        states.push({ period: slot.period, spentMicros: spent, reservedMicros: 0 });
    });
    return states;
  }

  async claimAlert(subject: string, period: BudgetPeriod, name: string): Promise<boolean> {
    const key = this.#keys.budgetAlert(subject, period.id, name);
    const keep = keepMs(period, Date.now());
    const set =
      keep > 0 ? await this.#redis.set(key, '1', 'PX', keep, 'NX') : await this.#redis.set(key, '1', 'NX');
    return set === 'OK';
  }

  /** The three windows in script order (day, month, total), each with its counter's key and its period when the budget has it. */
  #slots(
    subject: string,
    periods: readonly BudgetPeriod[],
  ): Array<{ key: string; period: BudgetPeriod | undefined }> {
    return PERIOD_KINDS.map((kind: BudgetPeriodKind) => {
      const period = periods.find((p) => p.kind === kind);
      return { key: this.#keys.budgetWindow(subject, period?.id ?? `unused-${kind}`), period };
    });
  }
}
