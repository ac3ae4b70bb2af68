/**
 * What every RateLimitStore must do, written once: admit up to the limit and
 * no further, across every connection counting in it; charge all of a
 * subject's rules or none; say when to retry; slide; take corrections.
 * Implementations: memory (manual clock) and Redis (its own clock; windows
 * short enough to really elapse).
 */
import assert from 'node:assert/strict';
import type { LimitUnit, WindowRule } from '../../src/limits/limit-rules.ts';
import type { RateLimitStore, WindowDecision } from '../../src/limits/rate-limit-store.ts';
import { type ConformanceCase, eventually, type Harness, runConformance } from './harness.ts';

export interface RateLimitHarness extends Harness {
  /** A store counting in the same windows as every other one this harness opened (another instance). */
  open(): Promise<RateLimitStore>;
  /** Moves a manual clock on; a store on a real clock lets the time pass by itself. */
  advance(ms: number): void;
  /** A window that elapses within a case (real time for Redis). */
  shortWindowMs: number;
}

function rule(id: string, limit: number, windowMs = 60_000, unit: LimitUnit = 'requests'): WindowRule {
  return { id, unit, windowMs, limit };
}

const admittedOf = (decisions: WindowDecision[]) => decisions.filter((d) => d.admitted).length;

const cases: ConformanceCase<RateLimitHarness>[] = [
  {
    name: 'admits up to the limit, then refuses with when to retry',
    async run(h) {
      const store = await h.open();
      const minute = rule('requests-minute', 5);
      const decisions: WindowDecision[] = [];
      for (let i = 0; i < 8; i++) decisions.push(await store.consume('key:a', [{ rule: minute, cost: 1 }]));
      assert.deepEqual(
        decisions.map((d) => d.admitted),
        [true, true, true, true, true, false, false, false],
      );
      const last = decisions.at(-1)!;
      const state = last.rules[0]!;
      assert.equal(state.used, 5);
      assert.ok(
        state.retryAt > last.now && state.retryAt <= last.now + 60_000 + 3_000,
        String(state.retryAt - last.now),
      );
      assert.ok(state.resetAt >= last.now + 60_000 - 3_000 && state.resetAt <= last.now + 63_000);
      assert.equal(decisions[2]!.rules[0]!.used, 3);
      assert.equal(decisions[2]!.rules[0]!.retryAt, 0);
    },
  },
  {
    name: 'every connection counts in the same window: exactly the limit under a concurrent burst',
    async run(h) {
      const stores = [await h.open(), await h.open(), await h.open()];
      const minute = rule('requests-minute', 50);
      const decisions = await Promise.all(
        Array.from({ length: 200 }, (_, i) =>
          stores[i % 3]!.consume('key:burst', [{ rule: minute, cost: 1 }]),
        ),
      );
      assert.equal(admittedOf(decisions), 50);
    },
  },
  {
    name: 'all rules or none: a request one rule refuses is not counted by the others',
    async run(h) {
      const store = await h.open();
      const loose = rule('requests-minute', 10);
      const tight = rule('requests-hour', 3, 3_600_000);
      const decisions: WindowDecision[] = [];
      for (let i = 0; i < 5; i++) {
        decisions.push(
          await store.consume('key:b', [
            { rule: loose, cost: 1 },
            { rule: tight, cost: 1 },
          ]),
        );
      }
      assert.equal(admittedOf(decisions), 3);
      const last = decisions.at(-1)!;
      assert.deepEqual(
        last.rules.map((r) => [r.rule.id, r.used, r.retryAt === 0]),
        [
          ['requests-minute', 3, true],
          ['requests-hour', 3, false],
        ],
      );
    },
  },
  {
    name: 'a cost above the limit never fits: refused, retry -1, nothing counted',
    async run(h) {
      const store = await h.open();
      const tokens = rule('tokens-minute', 100, 60_000, 'tokens');
      const big = await store.consume('key:c', [{ rule: tokens, cost: 101 }]);
      assert.equal(big.admitted, false);
      assert.equal(big.rules[0]!.retryAt, -1);
      const fits = await store.consume('key:c', [{ rule: tokens, cost: 100 }]);
      assert.equal(fits.admitted, true);
      assert.equal(fits.rules[0]!.used, 100);
    },
  },
  {
    name: 'subjects are counted apart',
    async run(h) {
      const store = await h.open();
      const minute = rule('requests-minute', 1);
      assert.equal((await store.consume('key:d1', [{ rule: minute, cost: 1 }])).admitted, true);
      assert.equal((await store.consume('key:d2', [{ rule: minute, cost: 1 }])).admitted, true);
      assert.equal((await store.consume('key:d1', [{ rule: minute, cost: 1 }])).admitted, false);
    },
  },
  {
    name: 'the window slides: what was admitted leaves it, and the retry time says when',
    async run(h) {
      const store = await h.open();
      const short = rule('requests-short', 2, h.shortWindowMs);
      const charge = [{ rule: short, cost: 1 }];
      assert.equal(
        admittedOf([await store.consume('key:e', charge), await store.consume('key:e', charge)]),
        2,
      );
      const refused = await store.consume('key:e', charge);
      assert.equal(refused.admitted, false);
      const wait = refused.rules[0]!.retryAt - refused.now;
      assert.ok(wait > 0 && wait <= h.shortWindowMs * 1.1 + 1, String(wait));
      h.advance(wait);
      await eventually(
        'admitted again once the window slid',
        async () => (await store.consume('key:e', charge)).admitted,
      );
    },
  },
  {
    name: 'a correction gives back (or takes) what the estimate got wrong',
    async run(h) {
      const store = await h.open();
      const tokens = rule('tokens-minute', 100, 60_000, 'tokens');
      const first = await store.consume('key:f', [{ rule: tokens, cost: 60 }]);
      assert.equal(first.admitted, true);
      assert.equal((await store.consume('key:f', [{ rule: tokens, cost: 70 }])).admitted, false);
      // The first request really used 20 tokens.
      await store.adjust('key:f', tokens, first.now, 20 - 60);
      const second = await store.consume('key:f', [{ rule: tokens, cost: 70 }]);
      assert.equal(second.admitted, true);
      assert.equal(second.rules[0]!.used, 90);
      // A correction never takes a bucket below zero.
      await store.adjust('key:f', tokens, first.now, -1_000);
      const third = await store.consume('key:f', [{ rule: tokens, cost: 0 }]);
      assert.ok(third.rules[0]!.used >= 0 && third.rules[0]!.used <= 70, String(third.rules[0]!.used));
    },
  },
  {
    name: 'a rule no longer passed is forgotten (a changed limit starts afresh under its new name)',
    async run(h) {
      const store = await h.open();
      const old = rule('requests-minute', 2);
      await store.consume('key:g', [{ rule: old, cost: 1 }]);
      await store.consume('key:g', [{ rule: old, cost: 1 }]);
      const hourly = rule('requests-hour', 5, 3_600_000);
      const after = await store.consume('key:g', [{ rule: hourly, cost: 1 }]);
      assert.equal(after.admitted, true);
      assert.equal(after.rules[0]!.used, 1);
      assert.equal((await store.consume('key:g', [{ rule: old, cost: 1 }])).rules[0]!.used, 1);
    },
  },
];

export function rateLimitStoreConformance(name: string, factory: () => Promise<RateLimitHarness>): void {
  runConformance(`rate-limit store conformance: ${name}`, cases, factory);
}
