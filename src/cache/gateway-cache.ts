/**
 * The gateway's response cache, built from config: L1 in process memory
 * (`cache.memory_mb`), L2 Redis when `storage.redis_url` is set, L3 the SQL
 * database when `cache.sql.enabled`. None at all when no model switches
 * caching on.
 */

import type { Config } from '../config/schema.ts';
import type { RedisConnection } from '../store/redis.ts';
import type { RedisKeys } from '../store/redis-keys.ts';
import type { Database } from '../store/sql.ts';
import { throttledWarning } from '../util/throttled-warning.ts';
import type { CacheStore } from './cache-store.ts';
import { MemoryCacheStore } from './memory-cache-store.ts';
import { RedisCacheStore } from './redis-cache-store.ts';
import { ResponseCache } from './response-cache.ts';
import { SqlCacheStore } from './sql-cache-store.ts';

/** One log line per tier per this long while it keeps failing. */
const TIER_ERROR_LOG_INTERVAL_MS = 10_000;

export function createGatewayCache(
  config: Config,
  deps: {
    redis: RedisConnection | undefined;
    redisKeys: RedisKeys;
    /** The gateway's database: the L3 tier's home when `cache.sql.enabled`. */
    database: Database;
    logger: { warn(obj: object, msg: string): void };
  },
): ResponseCache | undefined {
  if (!Object.values(config.models).some((model) => model.cache.enabled)) return undefined;
  const tiers: CacheStore[] = [
    new MemoryCacheStore({ maxBytes: Math.floor(config.cache.memory_mb * 1024 * 1024) }),
  ];
  if (deps.redis) tiers.push(new RedisCacheStore(deps.redis, deps.redisKeys));
  if (config.cache.sql.enabled) {
    tiers.push(
      new SqlCacheStore(deps.database, {
        ttlMs: config.cache.sql.ttl_s * 1000,
        onSweepError: (error) =>
          deps.logger.warn(
            { tier: 'sql', err: error instanceof Error ? error.message.slice(0, 200) : 'failed' },
            'response cache sweep failed; retrying at the next run',
          ),
      }),
    );
  }
  const warn = throttledWarning(
    deps.logger,
    'response cache tier unavailable; serving without it',
    TIER_ERROR_LOG_INTERVAL_MS,
  );
  return new ResponseCache(tiers, { onTierError: (tier, error) => warn({ tier }, error) });
}
