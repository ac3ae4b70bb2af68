import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { GatewayError } from '../../src/core/errors.ts';
import { HedgeLostError, hedge, LatencySketch } from '../../src/resilience/hedge.ts';
import { backoffDelay, RetryBudget, retryDelay } from '../../src/resilience/retry.ts';

/** Deterministic [0, 1) sequence (mulberry32). */
function seeded(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('backoff', () => {
  test('full jitter stays in [0, min(cap, base * 2^n)) and covers the range', () => {
    const random = seeded(42);
    for (let n = 0; n < 8; n++) {
      const ceiling = Math.min(1_000, 100 * 2 ** n);
      const delays = Array.from({ length: 500 }, () =>
        backoffDelay(n, { baseMs: 100, capMs: 1_000, random }),
      );
      assert.ok(
        delays.every((d) => d >= 0 && d < ceiling),
        `retry ${n} within [0, ${ceiling})`,
      );
      assert.ok(Math.min(...delays) < ceiling * 0.1, 'reaches the low end');
      assert.ok(Math.max(...delays) > ceiling * 0.9, 'reaches the high end');
    }
    assert.equal(backoffDelay(3, { baseMs: 100, capMs: 1_000, random: () => 0 }), 0);
    assert.equal(backoffDelay(3, { baseMs: 100, capMs: 1_000, random: () => 0.5 }), 400);
  });

  test('Retry-After is a floor, capped by max_retry_after_ms; final errors are not retried', () => {
    const options = { baseMs: 100, capMs: 5_000, maxRetryAfterMs: 3_000, random: () => 0.5 };
    const limited = new GatewayError('upstream_rate_limited', 'slow down', { retryAfterMs: 2_000 });
    assert.equal(retryDelay(limited, 0, options), 2_050);
    const tooLong = new GatewayError('upstream_rate_limited', 'slow down', { retryAfterMs: 86_400_000 });
    assert.equal(retryDelay(tooLong, 0, options), undefined);
    assert.equal(retryDelay(new GatewayError('upstream_client_error', 'bad'), 0, options), undefined);
    assert.equal(retryDelay(new Error('bug'), 0, options), undefined);
    assert.equal(retryDelay(new GatewayError('upstream_timeout', 't'), 2, options), 200);
  });
});

describe('RetryBudget', () => {
  test('each request earns ratio tokens, each retry spends one', () => {
    const budget = new RetryBudget({ ratio: 0.2, minConcurrent: 0, capacity: 1_000, initialTokens: 0 });
    assert.equal(budget.tryAcquire(), undefined, 'no traffic, no floor: no retries');
    for (let i = 0; i < 100; i++) budget.deposit();
    let retries = 0;
    while (budget.tryAcquire()) retries++;
    assert.equal(retries, 20);
  });

  test('a new budget starts full, so a fresh gateway can retry at once', () => {
    const budget = new RetryBudget({ ratio: 0.2, capacity: 3 });
    assert.equal(budget.tokens, 3);
  });

  test('with no tokens the floor admits retries only while fewer than minConcurrent are in flight', () => {
    const budget = new RetryBudget({ ratio: 0.2, minConcurrent: 3, initialTokens: 0 });
    const leases = [budget.tryAcquire(), budget.tryAcquire(), budget.tryAcquire()];
    assert.ok(leases.every((lease) => lease !== undefined));
    assert.equal(budget.inFlight, 3);
    assert.equal(budget.tryAcquire(), undefined, 'a fourth unpaid retry in flight is refused');
    leases[0]!.release();
    leases[0]!.release();
    assert.equal(budget.inFlight, 2, 'a lease releases once');
    const again = budget.tryAcquire();
    assert.ok(again, 'a finished retry frees its place under the floor');
    assert.equal(budget.tryAcquire(), undefined);
    // The floor is not a per-second allowance: nothing is banked while retries are done one at a time.
    for (const lease of [again, leases[1], leases[2]]) lease!.release();
    let sequential = 0;
    for (let i = 0; i < 50; i++) {
      const lease = budget.tryAcquire();
      if (lease) sequential++;
      lease?.release();
    }
    assert.equal(sequential, 50, 'a quiet gateway retries one at a time without limit');
    assert.equal(budget.tokens, 0);
  });

  test('paid retries count as in flight too, so the floor only adds to the ratio once tokens run out', () => {
    const budget = new RetryBudget({ ratio: 0.2, minConcurrent: 3, initialTokens: 0 });
    for (let i = 0; i < 10; i++) budget.deposit();
    const held = [];
    for (let lease = budget.tryAcquire(); lease; lease = budget.tryAcquire()) held.push(lease);
    // Two paid by tokens (10 × 0.2), one more under the floor (3 in flight).
    assert.equal(held.length, 3);
    assert.equal(budget.inFlight, 3);
  });

  test('tokens are capped, so a long calm cannot bank a retry storm', () => {
    const budget = new RetryBudget({ ratio: 1, minConcurrent: 0, capacity: 5, initialTokens: 0 });
    for (let i = 0; i < 1_000; i++) budget.deposit();
    let retries = 0;
    while (budget.tryAcquire()) retries++;
    assert.equal(retries, 5);
  });
});

describe('hedge()', () => {
  test('the first answer wins and the loser is aborted', async () => {
    const aborted: number[] = [];
    let releaseFirst!: () => void;
    const firstGate = new Promise<void>((r) => {
      releaseFirst = r;
    });
    const result = await hedge<string>(
      (index, signal) =>
        new Promise((resolve, reject) => {
          signal.addEventListener('abort', () => {
            aborted.push(index);
            reject(signal.reason);
          });
          if (index === 0) firstGate.then(() => resolve('first'));
          else resolve('hedge');
        }),
      { delayMs: 1 },
    );
    releaseFirst();
    assert.deepEqual(result, { value: 'hedge', index: 1 });
    assert.deepEqual(aborted, [0]);
  });

  test('no hedge when the first answers; the first error wins when all fail', async () => {
    let launched = 0;
    const result = await hedge(
      (index) => {
        launched++;
        return Promise.resolve(index);
      },
      { delayMs: 10_000 },
    );
    assert.equal(result.index, 0);
    assert.equal(launched, 1);
    await assert.rejects(
      hedge((index) => Promise.reject(new Error(`fail ${index}`)), { delayMs: 10_000 }),
      /fail 0/,
    );
    assert.ok(new HedgeLostError() instanceof Error);
  });

  test('the latency sketch reports the 95th percentile once it has enough samples', () => {
    const sketch = new LatencySketch(100);
    for (let i = 1; i <= 19; i++) sketch.add(i);
    assert.equal(sketch.quantile(0.95), undefined);
    for (let i = 20; i <= 100; i++) sketch.add(i);
    assert.equal(sketch.quantile(0.95), 96);
    for (let i = 0; i < 100; i++) sketch.add(1_000);
    assert.equal(sketch.quantile(0.95), 1_000, 'old samples roll out');
  });
});
