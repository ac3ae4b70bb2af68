import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { GatewayError } from '../../src/core/errors.ts';
import { MemoryBreakerStore } from '../../src/resilience/breaker-store.ts';
import {
  CircuitBreaker,
  type CircuitBreakerOptions,
  CircuitOpenError,
  type StateChange,
} from '../../src/resilience/circuit-breaker.ts';

/** A clock the test moves by hand. */
function manualClock(start = 1_000_000) {
  let now = start;
  return {
    now: () => now,
    advance: (ms: number) => {
      now += ms;
    },
  };
}

const upstreamDown = () => Promise.reject(new GatewayError('upstream_error', 'HTTP 500'));
const ok = () => Promise.resolve('ok');

function breaker(options: CircuitBreakerOptions = {}) {
  const clock = manualClock();
  const b = new CircuitBreaker({ id: 't/m', clock: clock.now, recoveryTimeoutMs: 60_000, ...options });
  return { b, clock };
}

async function fail(b: CircuitBreaker, times: number): Promise<void> {
  for (let i = 0; i < times; i++) await assert.rejects(b.call(upstreamDown), GatewayError);
}

describe('CircuitBreaker', () => {
  test('opens after N consecutive failures and then rejects without calling', async () => {
    const { b } = breaker({ failureThreshold: 3 });
    await fail(b, 2);
    assert.equal(b.state, 'closed');
    await fail(b, 1);
    assert.equal(b.state, 'open');
    let called = false;
    await assert.rejects(
      b.call(async () => {
        called = true;
      }),
      (error: unknown) =>
        error instanceof CircuitOpenError && error.status === 503 && error.retryAfterMs === 60_000,
    );
    assert.equal(called, false);
  });

  test('a success resets the consecutive count', async () => {
    const { b } = breaker({ failureThreshold: 3, minRequests: 1000 });
    await fail(b, 2);
    await b.call(ok);
    await fail(b, 2);
    assert.equal(b.state, 'closed');
  });

  test('opens on the failure rate over the window once min_requests were seen', async () => {
    const { b } = breaker({
      failureThreshold: 100,
      failureRate: 0.5,
      minRequests: 10,
      windowMs: 10_000,
    });
    for (let i = 0; i < 5; i++) {
      await b.call(ok);
      await fail(b, 1);
    }
    // 10 calls, 50 % failed: the last failure trips it.
    assert.equal(b.state, 'open');

    const { b: b2, clock: c2 } = breaker({
      failureThreshold: 100,
      failureRate: 0.5,
      minRequests: 10,
      windowMs: 10_000,
    });
    for (let i = 0; i < 4; i++) {
      await b2.call(ok);
      await fail(b2, 1);
    }
    // Old calls leave the rolling window: 8 stale calls do not count with the next ones.
    c2.advance(11_000);
    await b2.call(ok);
    await fail(b2, 1);
    assert.equal(b2.state, 'closed');
  });

  test('client errors and aborts do not count', async () => {
    const { b } = breaker({ failureThreshold: 2 });
    for (let i = 0; i < 5; i++) {
      await assert.rejects(b.call(() => Promise.reject(new GatewayError('upstream_client_error', 'bad'))));
      await assert.rejects(b.call(() => Promise.reject(new DOMException('gone', 'AbortError'))));
    }
    assert.equal(b.state, 'closed');
  });

  test('half-open after the recovery timeout admits a bounded number of concurrent probes', async () => {
    const { b, clock } = breaker({ failureThreshold: 1, halfOpenMaxProbes: 2 });
    await fail(b, 1);
    assert.equal(b.state, 'open');
    clock.advance(59_999);
    assert.equal(await b.acquire(), undefined);
    clock.advance(1);
    assert.equal(b.state, 'half_open');
    const p1 = await b.acquire();
    const p2 = await b.acquire();
    const p3 = await b.acquire();
    assert.equal(p1?.probe, true);
    assert.equal(p2?.probe, true);
    assert.equal(p3, undefined, 'third concurrent probe refused');
    // A released permit frees its slot.
    await p1!.release();
    const p4 = await b.acquire();
    assert.equal(p4?.probe, true);
  });

  test('a probe success closes it (after success_threshold successes)', async () => {
    const { b, clock } = breaker({ failureThreshold: 1, successThreshold: 2 });
    await fail(b, 1);
    clock.advance(60_000);
    await b.call(ok);
    assert.equal(b.state, 'half_open');
    await b.call(ok);
    assert.equal(b.state, 'closed');
  });

  test('a probe failure reopens it for a full recovery period', async () => {
    const { b, clock } = breaker({ failureThreshold: 1 });
    await fail(b, 1);
    clock.advance(60_000);
    await fail(b, 1);
    assert.equal(b.state, 'open');
    clock.advance(59_000);
    assert.equal(b.state, 'open');
    clock.advance(1_000);
    assert.equal(b.state, 'half_open');
  });

  test('emits state changes', async () => {
    const { b, clock } = breaker({ failureThreshold: 1 });
    const changes: string[] = [];
    b.onStateChange((c: StateChange) => changes.push(`${c.from}->${c.to}`));
    await fail(b, 1);
    clock.advance(60_000);
    await b.call(ok);
    assert.deepEqual(changes, ['closed->open', 'open->half_open', 'half_open->closed']);
  });

  test('breakers sharing a store see each other open, close, and share probe permits', async () => {
    const clock = manualClock();
    const store = new MemoryBreakerStore(clock.now);
    const options = { id: 'p/m', clock: clock.now, store, failureThreshold: 2, recoveryTimeoutMs: 1_000 };
    const a = new CircuitBreaker(options);
    const b = new CircuitBreaker(options);
    await fail(a, 2);
    assert.equal(b.state, 'open', 'B learns that A opened it');
    clock.advance(1_000);
    const probeA = await a.acquire();
    assert.equal(probeA?.probe, true);
    assert.equal(await b.acquire(), undefined, 'the only probe permit is held by A');
    await probeA!.success();
    assert.equal(b.state, 'closed');
    await b.reset();
    assert.equal(a.state, 'closed');
  });

  test('a probe permit that is never released lapses after its TTL', async () => {
    const { b, clock } = breaker({ failureThreshold: 1, probeTtlMs: 5_000 });
    await fail(b, 1);
    clock.advance(60_000);
    assert.ok(await b.acquire());
    assert.equal(await b.acquire(), undefined);
    clock.advance(5_000);
    assert.ok(await b.acquire(), 'the stuck permit expired');
  });
});
