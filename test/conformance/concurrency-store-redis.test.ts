/**
 * The concurrency store suite against RedisConcurrencyStore on a real Redis:
 * each store its own connection (as instances have), each case its own key
 * prefix, and leases short enough (200 ms) to really lapse within a case.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import type { Redis } from 'ioredis';
import { RedisConcurrencyStore } from '../../src/limits/concurrency-store.ts';
import { connectRedis } from '../../src/store/redis.ts';
import { RedisKeys } from '../../src/store/redis-keys.ts';
import { testRedisUrl } from '../helpers/services.ts';
import { concurrencyStoreConformance } from './concurrency-store.ts';
import { eventually } from './harness.ts';

const run = randomBytes(4).toString('hex');
let counter = 0;

concurrencyStoreConformance('redis', async () => {
  const keys = new RedisKeys(`conformance${run}-${++counter}:`);
  const connections: Redis[] = [];
  return {
    open: async () => {
      const redis = connectRedis(testRedisUrl());
      connections.push(redis);
      // Connected before use: a store refuses to queue a decision while Redis is not ready.
      await redis.ping();
      return new RedisConcurrencyStore(redis, keys, 200);
    },
    close: async () => {
      const [first] = connections;
      if (first !== undefined) {
        const found = await first.keys(keys.pattern);
        if (found.length > 0) await first.del(...found);
      }
      for (const redis of connections) redis.disconnect();
    },
  };
});

test('redis: a slot never released lapses on its own (its holder crashed)', async () => {
  const redis = connectRedis(testRedisUrl());
  const keys = new RedisKeys(`conformance${run}-lapse:`);
  try {
    await redis.ping();
    const store = new RedisConcurrencyStore(redis, keys, 200);
    assert.ok((await store.acquire('key:d', 1)).slot);
    assert.equal((await store.acquire('key:d', 1)).slot, undefined);
    await eventually('the lease lapsed', async () => (await store.acquire('key:d', 1)).slot !== undefined);
  } finally {
    const found = await redis.keys(keys.pattern);
    if (found.length > 0) await redis.del(...found);
    redis.disconnect();
  }
});
