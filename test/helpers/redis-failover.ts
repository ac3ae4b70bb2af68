/**
 * The parts of a "Redis failover during traffic" test that do not depend on
 * the topology (test/integration/redis-*-failover.test.ts): gateways sharing
 * one Redis through Sentinel or Cluster, a limited key used before the crash,
 * a breaker isolated before it, traffic through every instance while the
 * topology fails over, and the checks that limits and breakers held.
 */
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { pollUntil } from '../fixtures/ops/proc.ts';
import { chatStatus, newMasterKey, type SpawnedGateway, spawnGateway } from './gateway.ts';
import { createPostgresDatabase, testPostgresUrl } from './services.ts';

/** The breaker the tests isolate: the `spare` model's only target, never used by the traffic. */
export const SPARE_TARGET = 'mock/mock-2';

/** The limited key allows this many requests an hour; `useLimitedKey` spends `LIMIT_USED_BEFORE` of them. */
export const LIMIT = 10;
export const LIMIT_USED_BEFORE = 4;

export async function admin(
  gw: SpawnedGateway,
  method: string,
  path: string,
  body?: unknown,
): Promise<Response> {
  return fetch(`${gw.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${gw.masterKey}`, 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
}

export interface CreatedKey {
  id: string;
  /** The secret, for `authorization`. */
  key: string;
}

export async function createKey(gw: SpawnedGateway, limits: Record<string, number>): Promise<CreatedKey> {
  const res = await admin(gw, 'POST', '/admin/keys', { name: 'failover', limits });
  const json = (await res.json()) as CreatedKey;
  assert.equal(res.status, 201, JSON.stringify(json));
  return { id: json.id, key: json.key };
}

export async function breakerState(gw: SpawnedGateway, id: string): Promise<string | undefined> {
  const body = (await (await admin(gw, 'GET', '/admin/breakers')).json()) as {
    data: Array<{ id: string; state: string }>;
  };
  return body.data.find((b) => b.id === id)?.state;
}

/** The instance's own view of its Redis connection (`switchyard_redis_connected`). */
export async function redisConnected(gw: SpawnedGateway): Promise<boolean> {
  const text = await (await fetch(`${gw.url}/metrics`)).text();
  return /^switchyard_redis_connected 1$/m.test(text);
}

export interface FailoverGateways {
  readonly gateways: SpawnedGateway[];
  /** Starts one more gateway on the same config, database and Redis. */
  spawnOne(): Promise<SpawnedGateway>;
  /** SIGTERMs every gateway started and waits for the exits. */
  stop(): Promise<void>;
}

/**
 * `count` gateways sharing one PostgreSQL database and the Redis `storage`
 * names, with a `mock` model (the traffic) and a `spare` one (the breaker
 * the tests isolate); no provider probes, so only the tests change breakers.
 */
export async function startFailoverGateways(
  storage: Record<string, unknown>,
  count = 2,
): Promise<FailoverGateways> {
  const databaseUrl = await createPostgresDatabase(testPostgresUrl());
  const masterKey = newMasterKey();
  const config = {
    storage,
    providers: { mock: { type: 'mock' } },
    models: {
      mock: { targets: [{ provider: 'mock', model: 'mock-1' }] },
      spare: { targets: [{ provider: 'mock', model: 'mock-2' }] },
    },
    health: { provider_probe_interval_ms: 0 },
  };
  const gateways: SpawnedGateway[] = [];
  const spawnOne = async () => {
    const gw = await spawnGateway({ config, masterKey, env: { DATABASE_URL: databaseUrl } });
    gateways.push(gw);
    return gw;
  };
  const stop = async () => {
    for (const gw of gateways) gw.kill('SIGTERM');
    await Promise.all(gateways.map((gw) => gw.exited));
  };
  try {
    await Promise.all(Array.from({ length: count }, spawnOne));
  } catch (error) {
    await stop();
    throw error;
  }
  return { gateways, spawnOne, stop };
}

/** Before the crash: `LIMIT_USED_BEFORE` of the limited key's requests, through both instances. */
export async function useLimitedKey(a: SpawnedGateway, b: SpawnedGateway, limitedKey: string): Promise<void> {
  for (let i = 0; i < LIMIT_USED_BEFORE; i++) {
    assert.equal(await chatStatus(i % 2 === 0 ? a : b, limitedKey), 200);
  }
}

/** Before the crash: the spare target's breaker isolated on A, and B has heard of it. */
export async function isolateBreaker(a: SpawnedGateway, b: SpawnedGateway): Promise<void> {
  assert.equal(
    (await admin(a, 'POST', `/admin/breakers/${encodeURIComponent(SPARE_TARGET)}/isolate`)).status,
    200,
  );
  await pollUntil('B sees the isolation', async () => (await breakerState(b, SPARE_TARGET)) === 'isolated');
}

/**
 * What was written on the Redis primary (or cluster master) on `port` has
 * reached its replica. Redis replicates asynchronously: a write acknowledged
 * just before a crash can be lost, and these tests are not about that.
 */
export async function assertReplicated(port: number): Promise<void> {
  const direct = new Redis({ host: '127.0.0.1', port, lazyConnect: true });
  try {
    await direct.connect();
    assert.equal(await direct.call('WAIT', '1', '5000'), 1);
  } finally {
    direct.disconnect();
  }
}

export interface Traffic {
  /** Every status answered so far, in the order answered. */
  readonly statuses: number[];
  /** How long each answer took (ms), in the same order: for the record, never asserted. */
  readonly durations: number[];
  /** Resolves once `count` more requests have been answered than now. */
  flows(count: number, what: string): Promise<void>;
  /** Lets the requests in flight finish; resolves with every status. */
  stop(): Promise<number[]>;
}

/** One request at a time per `[gateway, key]` pair, until stopped. */
export function startTraffic(lanes: ReadonlyArray<readonly [SpawnedGateway, string]>): Traffic {
  const statuses: number[] = [];
  const durations: number[] = [];
  let stopping = false;
  const loop = async ([gw, key]: readonly [SpawnedGateway, string]) => {
    while (!stopping) {
      const sentAt = performance.now();
      const status = await chatStatus(gw, key);
      durations.push(performance.now() - sentAt);
      statuses.push(status);
    }
  };
  const loops = lanes.map(loop);
  return {
    statuses,
    durations,
    async flows(count, what) {
      const from = statuses.length;
      await pollUntil(what, async () => statuses.length >= from + count, { attempts: 400 });
    },
    async stop() {
      stopping = true;
      await Promise.all(loops);
      return statuses;
    },
  };
}

/** Every request answered, none failed: limits fail open while Redis is away (the documented design). */
export function assertAllAnswered(statuses: readonly number[]): void {
  assert.deepEqual(
    statuses.filter((s) => s !== 200),
    [],
    `every one of ${statuses.length} requests was answered 200`,
  );
}

/** Limits hold: the count from before the crash survived; exactly the rest are admitted across both instances. */
export async function assertLimitHeld(
  a: SpawnedGateway,
  b: SpawnedGateway,
  limitedKey: string,
): Promise<void> {
  const remaining = LIMIT - LIMIT_USED_BEFORE;
  const statuses = [];
  for (let i = 0; i < remaining + 2; i++) statuses.push(await chatStatus(i % 2 === 0 ? a : b, limitedKey));
  assert.deepEqual(statuses, [...Array<number>(remaining).fill(200), 429, 429]);
}

/** Breakers hold: the isolation survived; a gateway started now reads it, and a reset on B reaches A and it. */
export async function assertBreakersHeld(fleet: FailoverGateways): Promise<void> {
  const [a, b] = fleet.gateways as [SpawnedGateway, SpawnedGateway];
  const c = await fleet.spawnOne();
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
}
