/**
 * A Redis failover during traffic (`storage.redis_sentinel`): two gateway
 * processes find the primary through three real `redis-sentinel`s on
 * loopback; the primary is SIGKILLed while requests flow and the sentinels
 * promote the replica. Every request is answered meanwhile (rate limits fail
 * open while Redis is away, as documented); afterwards both gateways are on
 * the new primary, a key's rate limit goes on from the count it had before
 * the crash, and breakers' shared state (an isolation) is still there and
 * changes still reach every instance, a gateway started after the failover
 * included.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Redis } from 'ioredis';
import { pollUntil } from '../fixtures/ops/proc.ts';
import { chatStatus, newMasterKey, type SpawnedGateway, spawnGateway } from '../helpers/gateway.ts';
import { type RedisSentinelSet, startRedisSentinelSet } from '../helpers/redis-topologies.ts';
import { createPostgresDatabase, testPostgresUrl } from '../helpers/services.ts';

const SPARE_TARGET = 'mock/mock-2';

async function admin(gw: SpawnedGateway, method: string, path: string, body?: unknown): Promise<Response> {
  return fetch(`${gw.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${gw.masterKey}`, 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
}

async function createKey(gw: SpawnedGateway, limits: Record<string, number>): Promise<string> {
  const res = await admin(gw, 'POST', '/admin/keys', { name: 'failover', limits });
  const json = (await res.json()) as { key: string };
  assert.equal(res.status, 201, JSON.stringify(json));
  return json.key;
}

async function breakerState(gw: SpawnedGateway, id: string): Promise<string | undefined> {
  const body = (await (await admin(gw, 'GET', '/admin/breakers')).json()) as {
    data: Array<{ id: string; state: string }>;
  };
  return body.data.find((b) => b.id === id)?.state;
}

/** The instance's own view of its Redis connection (`switchyard_redis_connected`). */
async function redisConnected(gw: SpawnedGateway): Promise<boolean> {
  const text = await (await fetch(`${gw.url}/metrics`)).text();
  return /^switchyard_redis_connected 1$/m.test(text);
}

describe('Redis Sentinel: the primary is killed during traffic', () => {
  let set: RedisSentinelSet;
  const gateways: SpawnedGateway[] = [];
  let spawnOne: () => Promise<SpawnedGateway>;

  before(async () => {
    set = await startRedisSentinelSet();
    const databaseUrl = await createPostgresDatabase(testPostgresUrl());
    const masterKey = newMasterKey();
    const config = {
      storage: { redis_sentinel: { name: set.name, sentinels: set.sentinels } },
      providers: { mock: { type: 'mock' } },
      models: {
        mock: { targets: [{ provider: 'mock', model: 'mock-1' }] },
        spare: { targets: [{ provider: 'mock', model: 'mock-2' }] },
      },
      health: { provider_probe_interval_ms: 0 },
    };
    spawnOne = async () => {
      const gw = await spawnGateway({ config, masterKey, env: { DATABASE_URL: databaseUrl } });
      gateways.push(gw);
      return gw;
    };
    await Promise.all([spawnOne(), spawnOne()]);
  });

  after(async () => {
    for (const gw of gateways) gw.kill('SIGTERM');
    await Promise.all(gateways.map((gw) => gw.exited));
    await set?.stop();
  });

  test('requests keep being answered; then limits and breakers hold on the promoted replica', async (t) => {
    const [a, b] = gateways as [SpawnedGateway, SpawnedGateway];
    const trafficKey = await createKey(a, { requests_per_hour: 1_000_000 });
    const limitedKey = await createKey(a, { requests_per_hour: 10 });

    // Before: 4 of the limited key's 10 used, through both instances; a breaker isolated on A, seen by B.
    for (let i = 0; i < 4; i++) assert.equal(await chatStatus(i % 2 === 0 ? a : b, limitedKey), 200);
    assert.equal(
      (await admin(a, 'POST', `/admin/breakers/${encodeURIComponent(SPARE_TARGET)}/isolate`)).status,
      200,
    );
    await pollUntil('B sees the isolation', async () => (await breakerState(b, SPARE_TARGET)) === 'isolated');

    // What was written has reached the replica (Redis replicates asynchronously:
    // a write acknowledged just before a crash can be lost, and this test is not about that).
    const primary = await set.primary();
    const direct = new Redis({ host: '127.0.0.1', port: primary.port, lazyConnect: true });
    await direct.connect();
    assert.equal(await direct.call('WAIT', '1', '5000'), 1);
    direct.disconnect();

    // Traffic on both instances, two requests in flight at all times.
    const statuses: number[] = [];
    let stopping = false;
    const loop = async (gw: SpawnedGateway) => {
      while (!stopping) statuses.push(await chatStatus(gw, trafficKey));
    };
    const loops = [loop(a), loop(b)];
    await pollUntil('traffic flows', async () => statuses.length >= 20);

    const beforeKill = statuses.length;
    const killedAt = performance.now();
    const { from, to } = await set.failover();
    const promotedAt = performance.now();
    assert.notEqual(from.port, to.port);
    assert.equal(from.running, false);
    const atFailover = statuses.length;
    await pollUntil(
      'both gateways are on the new primary',
      async () => (await redisConnected(a)) && (await redisConnected(b)),
      {
        attempts: 400,
      },
    );
    const atRecovery = statuses.length;
    const recoveredAt = performance.now();
    await pollUntil('traffic flows on after the recovery', async () => statuses.length >= atRecovery + 20, {
      attempts: 400,
    });
    stopping = true;
    await Promise.all(loops);
    assert.ok(atFailover >= 20 && statuses.length > atRecovery);
    assert.deepEqual(
      statuses.filter((s) => s !== 200),
      [],
      `every one of ${statuses.length} requests was answered 200`,
    );
    // For the record (not asserted: timings depend on the machine).
    t.diagnostic(
      `${statuses.length} requests, ${atRecovery - beforeKill} between the kill and both gateways back on Redis; ` +
        `promoted after ${Math.round(promotedAt - killedAt)} ms, reconnected after ${Math.round(recoveredAt - killedAt)} ms`,
    );

    // Limits hold: the count before the crash survived; exactly 6 more across both instances.
    const after = [];
    for (let i = 0; i < 8; i++) after.push(await chatStatus(i % 2 === 0 ? a : b, limitedKey));
    assert.deepEqual(after, [200, 200, 200, 200, 200, 200, 429, 429]);

    // Breakers: the isolation survived; a gateway started now reads it, and a reset on B reaches A and it.
    const c = await spawnOne();
    assert.equal(await breakerState(c, SPARE_TARGET), 'isolated');
    assert.equal(
      (await admin(b, 'POST', `/admin/breakers/${encodeURIComponent(SPARE_TARGET)}/reset`)).status,
      200,
    );
    await pollUntil(
      'A and C see the reset',
      async () =>
        (await breakerState(a, SPARE_TARGET)) === 'closed' &&
        (await breakerState(c, SPARE_TARGET)) === 'closed',
    );
  });
});
