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

  test('isolate holds it open with no probes, whatever the recovery timeout, until reset', async () => {
    const { b, clock } = breaker({ recoveryTimeoutMs: 1_000 });
    const changes: string[] = [];
    b.onStateChange((c: StateChange) => changes.push(`${c.from}->${c.to}`));
    await b.isolate();
    assert.equal(b.state, 'isolated');
    clock.advance(3_600_000);
    assert.equal(b.state, 'isolated', 'no half-open after the recovery timeout');
    assert.equal(await b.acquire(), undefined, 'no probe, no call');
    let called = false;
    await assert.rejects(
      b.call(async () => {
        called = true;
      }),
      CircuitOpenError,
    );
    assert.equal(called, false);
    await b.trip();
    assert.equal(b.state, 'isolated', 'an ordinary opening does not lift an isolation');
    await b.reset();
    assert.equal(b.state, 'closed');
    assert.equal((await b.acquire())?.probe, false);
    assert.deepEqual(changes, ['closed->isolated', 'isolated->closed']);
  });

  test('an isolation is shared, and calls that were in flight cannot lift it', async () => {
    const clock = manualClock();
    const store = new MemoryBreakerStore(clock.now);
    const options = { id: 'p/m', clock: clock.now, store, failureThreshold: 1, recoveryTimeoutMs: 1 };
    const a = new CircuitBreaker(options);
    const b = new CircuitBreaker(options);
    const inFlight = await b.acquire();
    await a.isolate();
    assert.equal(b.state, 'isolated', 'B learns that A isolated it');
    clock.advance(10);
    await inFlight!.failure();
    assert.equal(b.state, 'isolated');
    assert.equal(await b.acquire(), undefined);
    await b.reset();
    assert.equal(a.state, 'closed', 'a reset on either instance lifts it on both');
  });

  test('an instance that opens just after an isolation it has not yet heard of adopts the isolation', async () => {
    const clock = manualClock();
    const store = new MemoryBreakerStore(clock.now);
    // Another instance isolated the target; this breaker was not subscribed yet.
    await store.publish('p/m', { state: 'isolated', epoch: clock.now(), openUntil: 0 });
    clock.advance(50);
    const late = new CircuitBreaker({
      id: 'p/m',
      clock: clock.now,
      store,
      failureThreshold: 1,
      recoveryTimeoutMs: 1,
    });
    await fail(late, 1);
    assert.equal(late.state, 'isolated', 'its newer opening lost to the stored isolation');
    assert.equal((await store.read('p/m'))?.state, 'isolated');
    clock.advance(1_000);
    assert.equal(await late.acquire(), undefined, 'and it admits no probe');
  });

  test('sync adopts a state shared before the breaker existed', async () => {
    const clock = manualClock();
    const store = new MemoryBreakerStore(clock.now);
    await store.publish('p/m', { state: 'isolated', epoch: clock.now(), openUntil: 0 });
    const fresh = new CircuitBreaker({ id: 'p/m', clock: clock.now, store });
    assert.equal(fresh.state, 'closed');
    await fresh.sync();
    assert.equal(fresh.state, 'isolated');
  });

  test('a probe that hangs until its timeout fails and reopens; its permit never outlives the TTL', async () => {
    const { b, clock } = breaker({ failureThreshold: 1, recoveryTimeoutMs: 1_000, probeTtlMs: 2_000 });
    await fail(b, 1);
    clock.advance(1_000);
    const probe = await b.acquire();
    assert.equal(probe?.probe, true);
    // The attempt's first-byte timeout ends the hung probe as an upstream timeout.
    await assert.rejects(
      b.call(() => Promise.reject(new GatewayError('upstream_timeout', 'no first byte'))),
      CircuitOpenError,
      'no second probe while the first is out',
    );
    await probe!.failure();
    assert.equal(b.state, 'open', 'the timed-out probe reopened it');
    clock.advance(999);
    assert.equal(b.state, 'open');
    clock.advance(1);
    const next = await b.acquire();
    assert.equal(next?.probe, true);
    // Its holder vanishes (crashed instance): the permit lapses at the TTL, never later.
    clock.advance(1_999);
    assert.equal(await b.acquire(), undefined);
    clock.advance(1);
    assert.equal((await b.acquire())?.probe, true);
  });
});
