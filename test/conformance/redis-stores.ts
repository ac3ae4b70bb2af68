/**
 * A conformance harness's Redis side, for stores that each instance opens on
 * its own connection (as separate gateway instances do): every store a case
 * opens gets a new connection, ready before use (the limit stores refuse to
 * queue a decision while Redis is not ready), all under one key prefix of the
 * case's own, whose keys are deleted when the case closes.
 */
import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { connectRedis } from '../../src/store/redis.ts';
import { RedisKeys } from '../../src/store/redis-keys.ts';
import { testRedisUrl } from '../helpers/services.ts';

const run = randomBytes(4).toString('hex');
let counter = 0;

export function redisStores<S>(build: (redis: Redis, keys: RedisKeys) => S): {
  open: () => Promise<S>;
  close: () => Promise<void>;
} {
  const keys = new RedisKeys(`conformance${run}-${++counter}:`);
  const connections: Redis[] = [];
  return {
    open: async () => {
      const redis = connectRedis(testRedisUrl());
      connections.push(redis);
      await redis.ping();
      return build(redis, keys);
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
}
