/**
 * The breaker store suite against RedisBreakerStore on a real Redis (the
 * runner's TEST_REDIS_URL). Each case gets its own key prefix, so cases and
 * concurrent test files never meet, and its keys are deleted afterwards.
 */
import { randomBytes } from 'node:crypto';
import { after } from 'node:test';
import type { BreakerStore } from '../../src/resilience/breaker-store.ts';
import { RedisBreakerStore } from '../../src/resilience/breaker-store-redis.ts';
import { connectRedis } from '../../src/store/redis.ts';
import { RedisKeys } from '../../src/store/redis-keys.ts';
import { testRedisUrl } from '../helpers/services.ts';
import { breakerStoreConformance } from './breaker-store.ts';

const redis = connectRedis(testRedisUrl());
after(() => redis.disconnect());
const quiet = { warn: () => {}, info: () => {} };
const run = randomBytes(4).toString('hex');
let counter = 0;

async function deleteUnder(keys: RedisKeys): Promise<void> {
  let cursor = '0';
  do {
    const [next, found] = await redis.scan(cursor, 'MATCH', keys.pattern, 'COUNT', 1000);
    if (found.length > 0) await redis.del(...found);
    cursor = next;
  } while (cursor !== '0');
}

breakerStoreConformance('redis', async () => {
  const keys = new RedisKeys(`conformance${run}-${++counter}:`);
  const stores: BreakerStore[] = [];
  return {
    // Each a separate subscriber connection, as separate gateway instances have.
    open: async () => {
      const store = await RedisBreakerStore.start(redis, quiet, { keys });
      stores.push(store);
      return store;
    },
    // Redis keeps time itself: a TTL this short really elapses, and cases poll for it.
    shortTtlMs: 25,
    close: async () => {
      await Promise.all(stores.map((s) => s.close()));
      await deleteUnder(keys);
    },
  };
});
