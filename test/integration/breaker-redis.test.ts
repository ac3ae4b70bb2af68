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

  before(async () => {
    [failing, healthy] = await Promise.all([startMockUpstream(), startMockUpstream()]);
    const provider = (m: MockUpstream) => ({ type: 'openai', base_url: m.baseUrl, api_key: apiKey });
    const config = {
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
      },
    };
    const masterKey = newMasterKey();
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
