/**
 * The shortcuts of the per-request path keep the slow path's answers: a
 * closed breaker's synchronous permit, permits that settle once, and the
 * router's shared decision for fixed-order models; request ids that sort by
 * time (the ledger's index stays append-only) and stay unique.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { AuthenticatedKey } from '../../src/auth/key-store.ts';
import { validateConfig } from '../../src/config/load.ts';
import type { ChatRequest } from '../../src/core/types.ts';
import { createProviders } from '../../src/providers/registry.ts';
import { CircuitBreaker } from '../../src/resilience/circuit-breaker.ts';
import { buildModelTable } from '../../src/routing/model-table.ts';
import { Router } from '../../src/routing/router.ts';
import { requestId } from '../../src/util/request-id.ts';

const CALLER = {
  key: {
    id: 'key_test',
    name: 'test',
    tier: null,
    allowedModels: null,
    metadata: {},
    expiresAt: null,
    isMaster: false,
    limits: null,
    budget: null,
    teamId: null,
  } satisfies AuthenticatedKey,
  headers: {},
};
const HELLO: ChatRequest = { model: 'm', messages: [{ role: 'user', content: 'hello' }] };

function breaker(failureThreshold: number) {
  let now = 1_000_000;
  const b = new CircuitBreaker({ id: 't/m', clock: () => now, failureThreshold, recoveryTimeoutMs: 60_000 });
  return {
    b,
    advance: (ms: number) => {
      now += ms;
    },
  };
}

describe('CircuitBreaker.acquireIfClosed', () => {
  test('gives a permit at once while closed, none while open or half-open, as acquire() decides', async () => {
    const { b, advance } = breaker(1);
    const permit = b.acquireIfClosed();
    assert.ok(permit);
    assert.equal(permit.probe, false);
    await permit.failure();
    assert.equal(b.state, 'open');
    assert.equal(b.acquireIfClosed(), undefined);
    assert.equal(await b.acquire(), undefined, 'open: acquire() refuses too');
    advance(60_000);
    assert.equal(b.acquireIfClosed(), undefined, 'half-open probes go through acquire()');
    const probe = await b.acquire();
    assert.equal(probe?.probe, true);
    await probe!.success();
    assert.equal(b.state, 'closed');
    assert.equal(b.acquireIfClosed()?.probe, false);
  });

  test('a permit counts once, however often it is settled', async () => {
    const { b } = breaker(2);
    const permit = b.acquireIfClosed()!;
    await permit.failure();
    await permit.failure();
    await permit.success();
    assert.equal(b.state, 'closed', 'one failure of two needed');
    await b.acquireIfClosed()!.failure();
    assert.equal(b.state, 'open', 'a second permit failing makes two');
  });

  test('a permit from before an opening says nothing after it', async () => {
    const { b } = breaker(1);
    const early = b.acquireIfClosed()!;
    await b.trip();
    await b.reset();
    await early.failure();
    assert.equal(b.state, 'closed');
  });
});

describe('Router fixed-order decisions', () => {
  function setup() {
    const config = validateConfig({
      providers: { a: { type: 'mock' }, b: { type: 'mock' } },
      models: {
        m: {
          targets: [
            { provider: 'a', model: 'x' },
            { provider: 'b', model: 'x' },
          ],
        },
      },
    });
    const table = buildModelTable(config, createProviders(config.providers));
    return { router: new Router(table), route: table.get('m')! };
  }

  test('one frozen decision is shared until a target is deactivated or activated', () => {
    const { router, route } = setup();
    const first = router.decide(route, HELLO, CALLER);
    assert.deepEqual(
      first.candidates.map((t) => t.id),
      ['a/x', 'b/x'],
    );
    assert.equal(router.decide(route, HELLO, CALLER), first);
    assert.ok(Object.isFrozen(first.candidates), 'no request can reorder another one’s candidates');
    assert.throws(() => first.candidates.push(first.candidates[0]!), TypeError);

    router.deactivate('a/x');
    assert.deepEqual(
      router.decide(route, HELLO, CALLER).candidates.map((t) => t.id),
      ['b/x'],
    );
    router.activate('a/x');
    assert.deepEqual(
      router.decide(route, HELLO, CALLER).candidates.map((t) => t.id),
      ['a/x', 'b/x'],
    );
  });

  test('with an availability check every request is decided afresh', () => {
    const config = validateConfig({
      providers: { a: { type: 'mock' }, b: { type: 'mock' } },
      models: {
        m: {
          targets: [
            { provider: 'a', model: 'x' },
            { provider: 'b', model: 'x' },
          ],
        },
      },
    });
    const table = buildModelTable(config, createProviders(config.providers));
    let aUp = true;
    const router = new Router(table, { isAvailable: (id) => id !== 'a/x' || aUp });
    const route = table.get('m')!;
    assert.equal(router.decide(route, HELLO, CALLER).candidates[0]?.id, 'a/x');
    aUp = false;
    assert.equal(router.decide(route, HELLO, CALLER).candidates[0]?.id, 'b/x');
  });
});

describe('requestId (UUID version 7)', () => {
  const V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

  test('ids are RFC 9562 version 7 UUIDs whose first 48 bits are the creation time in ms', () => {
    const before = Date.now();
    const id = requestId();
    const after = Date.now();
    assert.match(id, V7);
    const ms = Number.parseInt(id.slice(0, 8) + id.slice(9, 13), 16);
    // A burst of more than 4,096 ids in one ms borrows the next ms, so allow a little ahead.
    assert.ok(ms >= before && ms <= after + 100, `${ms} within [${before}, ${after}]`);
  });

  test('a burst far beyond 4,096 per millisecond stays unique and strictly increasing', () => {
    const ids = Array.from({ length: 50_000 }, requestId);
    assert.equal(new Set(ids).size, ids.length);
    for (let i = 1; i < ids.length; i++) assert.ok(ids[i]! > ids[i - 1]!, `${ids[i]} after ${ids[i - 1]}`);
    assert.ok(ids.every((id) => V7.test(id)));
  });

  test('the random part differs between ids of the same millisecond', () => {
    const a = requestId();
    const b = requestId();
    assert.notEqual(a.slice(19), b.slice(19));
  });
});
