/**
 * The budget store suite against RedisBudgetStore on a real Redis: each store
 * its own connection (as instances have), each case its own key prefix.
 */
import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { RedisBudgetStore } from '../../src/limits/redis-budget-store.ts';
import { connectRedis } from '../../src/store/redis.ts';
import { RedisKeys } from '../../src/store/redis-keys.ts';
import { testRedisUrl } from '../helpers/services.ts';
import { budgetStoreConformance } from './budget-store.ts';

const run = randomBytes(4).toString('hex');
let counter = 0;

budgetStoreConformance('redis', async () => {
  const keys = new RedisKeys(`conformance${run}-${++counter}:`);
  const connections: Redis[] = [];
  return {
    open: async () => {
      const redis = connectRedis(testRedisUrl());
      connections.push(redis);
      await redis.ping();
      return new RedisBudgetStore(redis, keys);
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
