/**
 * The Redis stores' conformance suites on a real Redis Cluster of three
 * masters on loopback (`storage.redis_cluster`): the names carry hash tags,
 * so every multi-key script and transaction stays within one slot.
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { RedisBudgetStore } from '../../src/limits/redis-budget-store.ts';
import { connectRedis, scanRedis, unlinkScanned } from '../../src/store/redis.ts';
import { RedisKeys } from '../../src/store/redis-keys.ts';
import type { RedisTarget } from '../../src/store/redis-topology.ts';
import { type RedisClusterSet, startRedisCluster } from '../helpers/redis-topologies.ts';
import { redisTopologySuites } from './redis-topology-suites.ts';

let started: Promise<RedisClusterSet> | undefined;
after(async () => (await started)?.stop());

redisTopologySuites('redis cluster', async (): Promise<RedisTarget> => {
  started ??= startRedisCluster();
  return { cluster: { nodes: (await started).nodes } };
});

test('on a cluster the hash tags are what keeps a multi-key script on one slot', async () => {
  started ??= startRedisCluster();
  const { nodes } = await started;
  const redis = connectRedis({ cluster: { nodes } });
  await redis.ping();
  try {
    const spend = async (store: RedisBudgetStore) =>
      store.reserve(
        'key:k1',
        [{ kind: 'day', id: 'day:2026-12-01', startMs: 0, endMs: 8.64e7, limitMicros: 10 }],
        1,
        async () => 0,
      );
    // Untagged names (a single server's) spread a subject's windows over slots: Redis refuses.
    await assert.rejects(spend(new RedisBudgetStore(redis, new RedisKeys('untagged:'))), /CROSSSLOT/);
    assert.equal(
      (await spend(new RedisBudgetStore(redis, new RedisKeys('tagged:', { cluster: true })))).admitted,
      true,
    );
  } finally {
    for await (const { names, node } of scanRedis(redis, 'tagged:*')) await unlinkScanned(redis, node, names);
    redis.disconnect();
  }
});
