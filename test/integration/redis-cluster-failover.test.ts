/**
 * A Redis Cluster failover during traffic (`storage.redis_cluster`): two
 * gateway processes share a real cluster of three masters, a replica each, on
 * loopback. The master serving the slots of the breaker's state, the limited
 * key's rate windows and both traffic keys' windows is SIGKILLed while
 * requests flow, and the cluster promotes its replica. Every request is
 * answered meanwhile (rate limits fail open while their slot has no master, as
 * documented); afterwards both gateways count on the promoted master, a key's
 * rate limit goes on from the count it had before the crash, and breakers'
 * shared state (an isolation) is still there and changes still reach every
 * instance, a gateway started after the failover included.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Redis } from 'ioredis';
import { RedisKeys } from '../../src/store/redis-keys.ts';
import { pollUntil } from '../fixtures/ops/proc.ts';
import type { SpawnedGateway } from '../helpers/gateway.ts';
import {
  assertAllAnswered,
  assertBreakersHeld,
  assertLimitHeld,
  assertReplicated,
  type CreatedKey,
  createKey,
  type FailoverGateways,
  isolateBreaker,
  LIMIT,
  redisConnected,
  SPARE_TARGET,
  startFailoverGateways,
  startTraffic,
  useLimitedKey,
} from '../helpers/redis-failover.ts';
import { type RedisClusterSet, startRedisCluster } from '../helpers/redis-topologies.ts';

/** The gateways' Redis names (the default prefix, hash tags on a cluster). */
const KEYS = new RedisKeys(undefined, { cluster: true });

/** Asks `port` directly (not through the cluster's routing). */
async function onNode<T>(port: number, use: (redis: Redis) => Promise<T>): Promise<T> {
  const redis = new Redis({ host: '127.0.0.1', port, lazyConnect: true });
  try {
    await redis.connect();
    return await use(redis);
  } finally {
    redis.disconnect();
  }
}

/** Requests a key's rate windows on the node on `port` have counted (every bucket of every rule). */
async function counted(port: number, key: CreatedKey): Promise<number> {
  const windows = await onNode(port, (r) => r.hvals(KEYS.rateWindows(`key:${key.id}`)));
  return windows.reduce((sum, n) => sum + Number(n), 0);
}

describe('Redis Cluster: a master is killed during traffic', () => {
  let cluster: RedisClusterSet;
  let fleet: FailoverGateways | undefined;

  before(async () => {
    cluster = await startRedisCluster({ replicas: true });
    fleet = await startFailoverGateways({ redis_cluster: { nodes: cluster.nodes } });
  });

  after(async () => {
    await fleet?.stop();
    await cluster?.stop();
  });

  test('requests keep being answered; then limits and breakers hold on the promoted replica', async (t) => {
    const [a, b] = fleet!.gateways as [SpawnedGateway, SpawnedGateway];
    // The victim: the master serving the breaker's state. Keys are created until
    // their rate windows hash to a slot it serves too (a third of slots each).
    const breakerKey = KEYS.breakerState(SPARE_TARGET);
    const victim = await cluster.masterOf(breakerKey);
    const keyOnVictim = async (limits: Record<string, number>): Promise<CreatedKey> => {
      for (let i = 0; i < 60; i++) {
        const key = await createKey(a, limits);
        const master = await cluster.masterOf(KEYS.rateWindows(`key:${key.id}`));
        if (master.port === victim.port) return key;
      }
      throw new Error(`no key's rate windows landed on the master on port ${victim.port}`);
    };
    const limited = await keyOnVictim({ requests_per_hour: LIMIT });
    const trafficA = await keyOnVictim({ requests_per_hour: 1_000_000 });
    const trafficB = await keyOnVictim({ requests_per_hour: 1_000_000 });

    // Before: 4 of the limited key's 10 used, through both instances; a breaker isolated on A, seen by B.
    await useLimitedKey(a, b, limited.key);
    await isolateBreaker(a, b);
    assert.equal(await counted(victim.port, limited), 4);
    await assertReplicated(victim.port);
    // Pub/sub is cluster-wide; each gateway's subscriber sits on one node, maybe the victim.
    const subscribersOnVictim = await onNode(
      victim.port,
      async (r) => (await r.call('PUBSUB', 'NUMSUB', KEYS.breakerChannel)) as [string, number],
    );

    // Traffic on both instances, each with its own key, two requests in flight at all times.
    const traffic = startTraffic([
      [a, trafficA.key],
      [b, trafficB.key],
    ]);
    const { statuses } = traffic;
    await traffic.flows(20, 'traffic flows');

    const beforeKill = statuses.length;
    const killedAt = performance.now();
    const { from, to } = await cluster.failover(breakerKey);
    const promotedAt = performance.now();
    assert.equal(from.port, victim.port);
    assert.equal(from.running, false);
    assert.notEqual(to.port, from.port);
    const atFailover = statuses.length;
    // Back on Redis: each gateway counts its traffic key's requests on the promoted master again.
    const countedAtPromotion = [await counted(to.port, trafficA), await counted(to.port, trafficB)];
    await pollUntil(
      'both gateways count on the promoted master',
      async () =>
        (await counted(to.port, trafficA)) > countedAtPromotion[0]! &&
        (await counted(to.port, trafficB)) > countedAtPromotion[1]! &&
        (await redisConnected(a)) &&
        (await redisConnected(b)),
      { attempts: 400 },
    );
    const atRecovery = statuses.length;
    const recoveredAt = performance.now();
    await traffic.flows(20, 'traffic flows on after the recovery');
    await traffic.stop();
    assert.ok(atFailover >= 20 && statuses.length > atRecovery);
    assertAllAnswered(statuses);
    // For the record (not asserted: timings depend on the machine).
    t.diagnostic(
      `${statuses.length} requests, ${atRecovery - beforeKill} between the kill and both gateways counting again; ` +
        `replica promoted after ${Math.round(promotedAt - killedAt)} ms, ` +
        `gateways counting on it after ${Math.round(recoveredAt - killedAt)} ms; ` +
        `breaker-channel subscribers on the killed master: ${subscribersOnVictim[1]}; ` +
        `slowest answer ${Math.round(Math.max(...traffic.durations))} ms`,
    );

    // Limits hold: the count before the crash survived; exactly 6 more across both instances.
    await assertLimitHeld(a, b, limited.key);

    // Breakers: the isolation survived; a gateway started now reads it, and a reset on B reaches A and it.
    await assertBreakersHeld(fleet!);
  });
});
