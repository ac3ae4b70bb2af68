/**
 * The rate-limit store suite against RedisRateLimitStore on a real Redis (the
 * runner's TEST_REDIS_URL): each store its own connection, each case its own
 * key prefix (./redis-stores.ts).
 */
import { RedisRateLimitStore } from '../../src/limits/redis-rate-limit-store.ts';
import { rateLimitStoreConformance } from './rate-limit-store.ts';
import { redisStores } from './redis-stores.ts';

rateLimitStoreConformance('redis', async () => ({
  ...redisStores((redis, keys) => new RedisRateLimitStore(redis, keys)),
  // Redis keeps time itself: the short window really elapses, and the case polls for it.
  advance: () => {},
  shortWindowMs: 200,
}));
