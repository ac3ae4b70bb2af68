/**
 * RateLimiter as a library user has it (from the package's index): one call
 * charges every window rule of a limits object, says what refused and when to
 * retry, corrects tokens after the fact, and admits (telling onStoreError)
 * when its store fails.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { MemoryRateLimitStore, RateLimiter, type RateLimitStore, windowRules } from '../../src/index.ts';

function clock(start = 1_000_000) {
  let now = start;
  return { now: () => now, advance: (ms: number) => (now += ms) };
}

describe('RateLimiter', () => {
  test('limits name their rules, requests first, shortest window first', () => {
    assert.deepEqual(
      windowRules({ tokens_per_day: 9, requests_per_hour: 2, requests_per_second: 1, max_concurrent: 3 }).map(
        (r) => r.id,
      ),
      ['requests-second', 'requests-hour', 'tokens-day'],
    );
  });

  test('refuses with the rule that refused and how long until the request fits', async () => {
    const time = clock();
    const limiter = new RateLimiter(new MemoryRateLimitStore(time.now));
    const limits = { requests_per_second: 2, requests_per_hour: 100 };
    assert.equal((await limiter.admit('key:a', limits))!.admitted, true);
    assert.equal((await limiter.admit('key:a', limits))!.admitted, true);
    const refused = (await limiter.admit('key:a', limits))!;
    assert.equal(refused.admitted, false);
    assert.equal(refused.refusedBy?.rule.id, 'requests-second');
    assert.ok(refused.retryAfterMs! > 0 && refused.retryAfterMs! <= 1_050, String(refused.retryAfterMs));
    time.advance(refused.retryAfterMs!);
    assert.equal((await limiter.admit('key:a', limits))!.admitted, true);
    assert.equal(await limiter.admit('key:a', {}), undefined, 'no window rules: nothing to decide');
  });

  test('a request over a tokens limit on its own never fits (Infinity), and settle corrects an estimate', async () => {
    const limiter = new RateLimiter(new MemoryRateLimitStore());
    const limits = { tokens_per_minute: 100 };
    const tooBig = (await limiter.admit('key:b', limits, 150))!;
    assert.equal(tooBig.retryAfterMs, Number.POSITIVE_INFINITY);
    const first = (await limiter.admit('key:b', limits, 90))!;
    assert.equal(first.admitted, true);
    assert.equal((await limiter.admit('key:b', limits, 20))!.admitted, false);
    await limiter.settle(first, 30);
    const second = (await limiter.admit('key:b', limits, 20))!;
    assert.equal(second.admitted, true);
    assert.equal(second.rules[0]!.used, 50);
  });

  test('a failing store admits the request and says why', async () => {
    const errors: unknown[] = [];
    const broken: RateLimitStore = {
      consume: () => Promise.reject(new Error('down')),
      adjust: () => Promise.reject(new Error('down')),
    };
    const limiter = new RateLimiter(broken, { onStoreError: (error) => errors.push(error) });
    const decision = (await limiter.admit('key:c', { requests_per_minute: 1 }, 5))!;
    assert.equal(decision.admitted, true);
    assert.deepEqual(decision.rules, []);
    await limiter.settle(decision, 50);
    assert.equal(errors.length, 1, 'settling a decision made without the store asks nothing of it');
  });
});
