/**
 * What every BudgetStore must do: start a window's counter from the ledger's
 * spend (once), admit a reservation only where every window has room, admit
 * exactly what fits to a concurrent burst over every connection, turn a
 * reservation into real spend, refuse everything once a window is at its cap,
 * and grant an alert once per window.
 */
import assert from 'node:assert/strict';
import type { BudgetPeriod } from '../../src/limits/budget-periods.ts';
import type { BudgetStore, SpendSeed } from '../../src/limits/budget-store.ts';
import { type ConformanceCase, type Harness, runConformance } from './harness.ts';

export interface BudgetHarness extends Harness {
  /** A store sharing counters with every other one this harness opened (another instance). */
  open(): Promise<BudgetStore>;
}

const day = (limitMicros: number): BudgetPeriod => ({
  kind: 'day',
  id: 'day:2026-12-01',
  startMs: Date.UTC(2026, 11, 1),
  endMs: Date.UTC(2026, 11, 2),
  limitMicros,
});
const total = (limitMicros: number): BudgetPeriod => ({
  kind: 'total',
  id: 'total',
  startMs: 0,
  endMs: Number.POSITIVE_INFINITY,
  limitMicros,
});
const seeded =
  (spent: number, calls: string[] = []): SpendSeed =>
  async (subject, period) => {
    calls.push(`${subject} ${period.id}`);
    return spent;
  };

const cases: ConformanceCase<BudgetHarness>[] = [
  {
    name: "a window's counter starts from the ledger's spend, seeded once",
    async run(h) {
      const store = await h.open();
      const calls: string[] = [];
      const first = await store.reserve('key:a', [day(1_000)], 100, seeded(700, calls));
      assert.equal(first.admitted, true);
      assert.deepEqual(
        first.states.map((s) => [s.spentMicros, s.reservedMicros]),
        [[700, 100]],
      );
      const second = await store.reserve('key:a', [day(1_000)], 250, seeded(0, calls));
      assert.equal(second.admitted, false, '700 spent + 100 reserved + 250 is over 1,000');
      assert.equal(second.refusedBy?.id, 'day:2026-12-01');
      assert.deepEqual(calls, ['key:a day:2026-12-01']);
    },
  },
  {
    name: 'every window must have room: one without refuses, and nothing is reserved',
    async run(h) {
      const store = await h.open();
      assert.equal((await store.reserve('key:b', [day(1_000), total(300)], 200, seeded(0))).admitted, true);
      const refused = await store.reserve('key:b', [day(1_000), total(300)], 200, seeded(0));
      assert.equal(refused.admitted, false);
      assert.equal(refused.refusedBy?.kind, 'total');
      const small = await store.reserve('key:b', [day(1_000), total(300)], 100, seeded(0));
      assert.equal(small.admitted, true);
      assert.deepEqual(
        small.states.map((s) => [s.period.kind, s.reservedMicros]),
        [
          ['day', 300],
          ['total', 300],
        ],
      );
    },
  },
  {
    name: 'a concurrent burst over every connection gets exactly what fits',
    async run(h) {
      const stores = [await h.open(), await h.open(), await h.open()];
      const decisions = await Promise.all(
        Array.from({ length: 200 }, (_, i) =>
          stores[i % 3]!.reserve('key:c', [total(50_000)], 5_000, seeded(0)),
        ),
      );
      assert.equal(decisions.filter((d) => d.admitted).length, 10);
    },
  },
  {
    name: 'settling turns the reservation into the real cost; a window at its cap admits nothing, free or not',
    async run(h) {
      const store = await h.open();
      const periods = [day(1_000)];
      await store.reserve('key:d', periods, 600, seeded(0));
      const after = await store.settle('key:d', periods, 600, 400);
      assert.deepEqual(
        after.map((s) => s.spentMicros),
        [400],
      );
      assert.equal((await store.reserve('key:d', periods, 600, seeded(0))).admitted, true, '400 + 600 fits');
      await store.settle('key:d', periods, 600, 600);
      const full = await store.reserve('key:d', periods, 0, seeded(0));
      assert.equal(full.admitted, false, 'at the cap: even a request priced at nothing is refused');
    },
  },
  {
    name: 'an alert is granted once per window and name',
    async run(h) {
      const [a, b] = [await h.open(), await h.open()];
      assert.equal(await a.claimAlert('key:e', day(1), 'at-0.8'), true);
      assert.equal(await b.claimAlert('key:e', day(1), 'at-0.8'), false);
      assert.equal(await a.claimAlert('key:e', total(1), 'at-0.8'), true);
      assert.equal(await a.claimAlert('key:f', day(1), 'at-0.8'), true);
    },
  },
];

export function budgetStoreConformance(name: string, factory: () => Promise<BudgetHarness>): void {
  runConformance(`budget store conformance: ${name}`, cases, factory);
}
