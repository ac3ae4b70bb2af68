/**
 * The rate-limit store suite against RedisRateLimitStore on a real Redis (the
 * runner's TEST_REDIS_URL). Each case gets its own key prefix and its keys are
 * deleted afterwards; each store it opens has its own connection, as separate
 * gateway instances do.
 */
import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { RedisRateLimitStore } from '../../src/limits/redis-rate-limit-store.ts';
import { connectRedis } from '../../src/store/redis.ts';
import { RedisKeys } from '../../src/store/redis-keys.ts';
import { testRedisUrl } from '../helpers/services.ts';
import { rateLimitStoreConformance } from './rate-limit-store.ts';

const run = randomBytes(4).toString('hex');
let counter = 0;

rateLimitStoreConformance('redis', async () => {
  const keys = new RedisKeys(`conformance${run}-${++counter}:`);
  const connections: Redis[] = [];
  return {
    open: async () => {
      const redis = connectRedis(testRedisUrl());
      connections.push(redis);
      // Connected before use: a store refuses to queue a decision while Redis is not ready.
      await redis.ping();
      return new RedisRateLimitStore(redis, keys);
    },
    // Redis keeps time itself: the short window really elapses, and the case polls for it.
    advance: () => {},
    shortWindowMs: 200,
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
