/**
 * The in-process limit stores answer in the tick (RequestLimits admits a
 * request without awaiting anything when every store is in this process):
 * the in-tick calls must decide exactly as the promised ones do, and a budget
 * window not yet seeded from the ledger must send the caller to `reserve`.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BudgetGuard, MemoryBudgetStore, MemoryRateLimitStore, RateLimiter } from '../../src/index.ts';
import { MemoryConcurrencyStore } from '../../src/limits/concurrency-store.ts';

const DAY = Date.UTC(2026, 11, 1, 12);

describe('in-process limits answered in the tick', () => {
  it('a budget reserves in the tick once its window is seeded, and settles and alerts as settle does', async () => {
    const alerts: number[] = [];
    let seeded = 0;
    const guard = new BudgetGuard(new MemoryBudgetStore(() => DAY), {
      seed: async () => {
        seeded++;
        return 500_000;
      },
      onAlert: (alert) => alerts.push(alert.spentMicros),
      now: () => DAY,
    });
    const budget = { daily_usd: 1 };
    assert.equal(guard.inProcess, true);
    // Not seeded yet: the caller must ask `reserve`, and nothing was reserved.
    assert.equal(guard.reserveNow('key:a', budget, 100_000), null);
    const first = await guard.reserve('key:a', budget, 100_000);
    assert.equal(first?.admitted, true);
    assert.equal(seeded, 1);

    const second = guard.reserveNow('key:a', budget, 300_000);
    assert.ok(second);
    assert.equal(second.admitted, true);
    assert.deepEqual(
      second.states.map((s) => [s.spentMicros, s.reservedMicros]),
      [[500_000, 400_000]],
    );
    // 500,000 spent and 400,000 reserved: 200,000 more does not fit.
    assert.equal(guard.reserveNow('key:a', budget, 200_000)?.admitted, false);

    guard.settleNow(first!, 100_000);
    assert.deepEqual(alerts, [], 'at 60 % of the day: no alert');
    guard.settleNow(second, 300_000);
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(alerts, [900_000], 'crossing 80 % alerts once');
    guard.settleNow(guard.reserveNow('key:a', budget, 0)!, 0);
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(alerts, [900_000], 'and not again in the same window');
    assert.equal(seeded, 1, 'the window was seeded once');
  });

  it('rate windows admit, refund and settle in the tick as the promised calls do', () => {
    const limiter = new RateLimiter(new MemoryRateLimitStore(() => DAY));
    const limits = { requests_per_minute: 2, tokens_per_minute: 100 };
    assert.equal(limiter.inProcess, true);
    const a = limiter.admitNow('key:a', limits, 60);
    assert.equal(a?.admitted, true);
    // 60 of 100 tokens taken: 50 more do not fit until a's estimate is corrected down.
    assert.equal(limiter.admitNow('key:a', limits, 50)?.admitted, false);
    limiter.settleNow(a!, 10);
    const b = limiter.admitNow('key:a', limits, 50);
    assert.equal(b?.admitted, true);
    assert.equal(limiter.admitNow('key:a', limits, 1)?.admitted, false, 'two requests a minute');
    limiter.refundNow(b!);
    assert.equal(
      limiter.admitNow('key:a', limits, 1)?.admitted,
      true,
      'the refunded request frees its place',
    );
  });

  it('a concurrency slot is taken and freed in the tick', async () => {
    const slots = new MemoryConcurrencyStore();
    const one = slots.acquireNow('key:a', 1);
    assert.ok(one.slot);
    assert.equal(slots.acquireNow('key:a', 1).slot, undefined);
    void one.slot.release();
    assert.ok(slots.acquireNow('key:a', 1).slot, 'freed before release() resolves');
    await one.slot.release();
  });
});
