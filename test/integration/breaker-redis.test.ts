/**
 * Circuit breakers shared through Redis: two gateway processes, one Redis.
 * A breaker opened by one instance stops the other sending to that target,
 * and half-open probes are counted across both.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { GatewayError } from '../../src/core/errors.ts';
import { RedisBreakerStore } from '../../src/resilience/breaker-store-redis.ts';
import { CircuitBreaker } from '../../src/resilience/circuit-breaker.ts';
import { connectRedis } from '../../src/store/redis.ts';
import { RedisKeys } from '../../src/store/redis-keys.ts';
import { pollUntil } from '../fixtures/ops/proc.ts';
import { newMasterKey, registerSecret, type SpawnedGateway, spawnGateway } from '../helpers/gateway.ts';
import { type MockUpstream, startMockUpstream } from '../helpers/mock-upstream.ts';
import { chat, closedPort } from '../helpers/resilience.ts';
import { testRedisUrl } from '../helpers/services.ts';

const apiKey = 'sk-CANARY-breaker-redis-0123456789';
registerSecret(apiKey);

async function breakerState(gw: SpawnedGateway, id: string): Promise<string | undefined> {
  const res = await fetch(`${gw.url}/admin/breakers`, {
    headers: { authorization: `Bearer ${gw.masterKey}` },
  });
  const body = (await res.json()) as { data: Array<{ id: string; state: string }> };
  return body.data.find((b) => b.id === id)?.state;
}

describe('circuit breakers shared by two gateway processes through Redis', () => {
  let failing: MockUpstream;
  let healthy: MockUpstream;
  let gateways: SpawnedGateway[] = [];
  // Unique names: other tests may share this Redis.
  const suffix = randomBytes(4).toString('hex');
  const bad = `bad${suffix}`;
  const good = `good${suffix}`;
  const openTarget = `${bad}/gpt-4o`;
  const probeTarget = `${bad}/gpt-4o-mini`;
  const heldTarget = `${bad}/gpt-4.1`;
  let config: Record<string, unknown>;
  let masterKey: string;

  before(async () => {
    [failing, healthy] = await Promise.all([startMockUpstream(), startMockUpstream()]);
    const provider = (m: MockUpstream) => ({ type: 'openai', base_url: m.baseUrl, api_key: apiKey });
    config = {
      storage: { redis_url: testRedisUrl() },
      providers: { [bad]: provider(failing), [good]: provider(healthy) },
      models: {
        sticky: {
          targets: [
            { provider: bad, model: 'gpt-4o' },
            { provider: good, model: 'gpt-4o' },
          ],
          circuit_breaker: { failure_threshold: 3, recovery_timeout_ms: 600_000 },
        },
        probing: {
          targets: [
            { provider: bad, model: 'gpt-4o-mini' },
            { provider: good, model: 'gpt-4o-mini' },
          ],
          timeouts: { first_byte_ms: 1_500 },
          circuit_breaker: { failure_threshold: 1, recovery_timeout_ms: 500, half_open_max_probes: 1 },
        },
        held: {
          targets: [
            { provider: bad, model: 'gpt-4.1' },
            { provider: good, model: 'gpt-4.1' },
          ],
          // An ordinary open breaker would half-open 1 ms later: only an isolation keeps probes away.
          circuit_breaker: { failure_threshold: 1, recovery_timeout_ms: 1 },
        },
      },
    };
    masterKey = newMasterKey();
    gateways = await Promise.all([spawnGateway({ config, masterKey }), spawnGateway({ config, masterKey })]);
  });
  after(async () => {
    for (const gw of gateways) gw.kill('SIGTERM');
    await Promise.all(gateways.map((gw) => gw.exited));
    await Promise.all([failing.close(), healthy.close()]);
  });

  test('instance A opens a breaker; instance B then sends nothing to that target', async () => {
    const [a, b] = gateways as [SpawnedGateway, SpawnedGateway];
    failing.setDefault({ kind: 'status', status: 500 });
    for (let i = 0; i < 3; i++) {
      const r = await chat(a.url, a.masterKey, 'sticky', `a${i}`);
      assert.equal(r.target, `${good}/gpt-4o`);
    }
    assert.equal(failing.requests.length, 3);
    await pollUntil('B sees the breaker open', async () => (await breakerState(b, openTarget)) === 'open');
    for (let i = 0; i < 5; i++) {
      const r = await chat(b.url, b.masterKey, 'sticky', `b${i}`);
      assert.equal(r.status, 200);
      assert.equal(r.fallbackReason, 'circuit_open');
    }
    assert.equal(failing.requests.length, 3, 'B sent nothing to the open target');
  });

  test('half-open: one probe across both instances reaches the target', async () => {
    const [a, b] = gateways as [SpawnedGateway, SpawnedGateway];
    failing.reset();
    failing.setDefault({ kind: 'status', status: 500 });
    // Trip it (threshold 1) through A.
    await chat(a.url, a.masterKey, 'probing', 'trip');
    await pollUntil('B sees it open', async () => (await breakerState(b, probeTarget)) === 'open');
    failing.reset();
    // The probe hangs until its first-byte timeout, holding the only permit meanwhile.
    failing.setDefault({ kind: 'hang' });
    await pollUntil(
      'recovery timeout passed on both',
      async () =>
        (await breakerState(a, probeTarget)) === 'half_open' &&
        (await breakerState(b, probeTarget)) === 'half_open',
    );
    const results = await Promise.all(
      Array.from({ length: 8 }, (_, i) => {
        const gw = i % 2 === 0 ? a : b;
        return chat(gw.url, gw.masterKey, 'probing', `probe ${i}`);
      }),
    );
    assert.ok(results.every((r) => r.status === 200 && r.target === `${good}/gpt-4o-mini`));
    const toFailing = failing.requests.filter((r) => (r.body as { model?: string }).model === 'gpt-4o-mini');
    assert.equal(toFailing.length, 1, 'exactly one probe reached the half-open target');
    // The probe timed out: the breaker re-opened everywhere.
    await pollUntil('both re-opened', async () => (await breakerState(b, probeTarget)) === 'open');
    failing.setDefault(undefined);
  });
  test('isolate on A: neither instance sends to the target, nor one started later, until a reset', async () => {
    const [a, b] = gateways as [SpawnedGateway, SpawnedGateway];
    failing.reset();
    const admin = (gw: SpawnedGateway, action: string, key = gw.masterKey) =>
      fetch(`${gw.url}/admin/breakers/${encodeURIComponent(heldTarget)}/${action}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${key}` },
      });
    assert.equal((await admin(a, 'isolate', 'sk-not-the-master-key')).status, 401);
    const isolated = await admin(a, 'isolate');
    assert.equal(isolated.status, 200);
    assert.deepEqual(await isolated.json(), { id: heldTarget, state: 'isolated' });
    await pollUntil('B sees the isolation', async () => (await breakerState(b, heldTarget)) === 'isolated');

    // The target is healthy: only the isolation keeps requests (and probes) away from it.
    for (const gw of [a, b]) {
      for (let i = 0; i < 3; i++) {
        const r = await chat(gw.url, gw.masterKey, 'held', `held ${i}`);
        assert.deepEqual([r.status, r.target, r.fallbackReason], [200, `${good}/gpt-4.1`, 'circuit_open']);
      }
    }
    // Chat requests only: a starting instance also lists the provider's models.
    const toHeld = () =>
      failing.requests.filter((r) => (r.body as { model?: string } | undefined)?.model === 'gpt-4.1');
    assert.equal(toHeld().length, 0);

    const deep = (await (await fetch(`${b.url}/health/deep`)).json()) as {
      targets: Array<{ id: string; state: string }>;
    };
    assert.equal(deep.targets.find((t) => t.id === heldTarget)?.state, 'isolated');
    const metrics = await (await fetch(`${b.url}/metrics`)).text();
    assert.ok(metrics.includes(`switchyard_circuit_breaker_state{target="${heldTarget}"} 3`));

    // An instance that starts now adopts the isolation before serving.
    const late = await spawnGateway({ config, masterKey });
    try {
      assert.equal(await breakerState(late, heldTarget), 'isolated');
      const r = await chat(late.url, late.masterKey, 'held', 'late');
      assert.equal(r.target, `${good}/gpt-4.1`);
    } finally {
      late.kill('SIGTERM');
      await late.exited;
    }
    assert.equal(toHeld().length, 0);

    const reset = await admin(b, 'reset');
    assert.deepEqual(await reset.json(), { id: heldTarget, state: 'closed' });
    await pollUntil('A sees the reset', async () => (await breakerState(a, heldTarget)) === 'closed');
    const back = await chat(a.url, a.masterKey, 'held', 'back');
    assert.deepEqual([back.target, back.fallbackReason], [`${bad}/gpt-4.1`, null]);
    assert.equal(toHeld().length, 1);
  });
});

// The store's contract (supersedes, permits, TTLs, announcements) is test/conformance/breaker-store.ts;
// these are the facts only Redis has: how long its keys live.
describe('breaker keys in Redis', () => {
  const logger = { warn: () => {}, info: () => {} };
  const keys = new RedisKeys(`breakerttl${randomBytes(4).toString('hex')}:`);

  test("a probe permit's key expires at the permit's TTL, not later", async () => {
    const redis = connectRedis(testRedisUrl());
    const store = await RedisBreakerStore.start(redis, logger, { keys });
    try {
      assert.equal(await store.acquireProbe('p/m', 1, 1, 200), true);
      const ttl = await redis.pttl(keys.breakerProbes('p/m', 1));
      assert.ok(ttl > 0 && ttl <= 200, `permit expires in ${ttl} ms`);
    } finally {
      await redis.del(keys.breakerProbes('p/m', 1));
      await store.close();
      redis.disconnect();
    }
  });

  test('an isolation is stored without expiry, through a losing opening; the reset that lifts it expires', async () => {
    const redis = connectRedis(testRedisUrl());
    const store = await RedisBreakerStore.start(redis, logger, { keys });
    const key = keys.breakerState('p/iso');
    try {
      await store.publish('p/iso', { state: 'isolated', epoch: 100, openUntil: 0 });
      assert.equal(await redis.pttl(key), -1, 'an isolation does not expire');
      await store.publish('p/iso', { state: 'open', epoch: 200, openUntil: 260 });
      assert.equal(await redis.pttl(key), -1, 'the losing opening left it as it was');
      await store.publish('p/iso', { state: 'closed', epoch: 300, openUntil: 0 });
      const ttl = await redis.pttl(key);
      assert.ok(ttl > 0 && ttl <= 24 * 3600 * 1000, `a closed state expires (in ${ttl} ms)`);
    } finally {
      await redis.del(key);
      await store.close();
      redis.disconnect();
    }
  });
});

describe('Redis unavailable', () => {
  test('breakers keep working on local state and the outage is logged once', async () => {
    const warnings: string[] = [];
    const logger = { warn: (_o: object, msg: string) => warnings.push(msg), info: () => {} };
    const redis = connectRedis(`redis://127.0.0.1:${await closedPort()}`, { commandTimeoutMs: 100 });
    const store = await RedisBreakerStore.start(redis, logger);
    try {
      const breaker = new CircuitBreaker({ id: 'x/y', store, failureThreshold: 2 });
      for (let i = 0; i < 2; i++) {
        await assert.rejects(breaker.call(() => Promise.reject(new GatewayError('upstream_error', 'down'))));
      }
      assert.equal(breaker.state, 'open');
      assert.equal(await breaker.acquire(), undefined);
      assert.deepEqual(warnings, ['redis unavailable: circuit breakers fall back to local state']);
    } finally {
      await store.close();
      redis.disconnect();
    }
  });
});
