/**
 * The gateway's semantic tier, built from config: none unless a model has
 * `cache.semantic.enabled`; shared through Redis when `storage.redis_url` is set.
 */

import type { Config } from '../../config/schema.ts';
import type { RedisConnection } from '../../store/redis.ts';
import type { RedisKeys } from '../../store/redis-keys.ts';
import { throttledWarning } from '../../util/throttled-warning.ts';
import { LEXICAL_DIMENSIONS } from './lexical-embedder.ts';
import { RedisSemanticShare } from './redis-semantic-share.ts';
import { SemanticCache } from './semantic-cache.ts';

/** One log line per failing part per this long. */
const ERROR_LOG_INTERVAL_MS = 10_000;

export function createGatewaySemanticCache(
  config: Config,
  deps: {
    redis: RedisConnection | undefined;
    redisKeys: RedisKeys;
    logger: { warn(obj: object, msg: string): void };
  },
): SemanticCache | undefined {
  if (!Object.values(config.models).some((model) => model.cache.enabled && model.cache.semantic.enabled)) {
    return undefined;
  }
  // The index takes at most a quarter of the cache's memory bound, counted in lexical vectors.
  const maxEntries = Math.max(
    1_000,
    Math.floor((config.cache.memory_mb * 1024 * 1024) / 4 / (LEXICAL_DIMENSIONS * 4)),
  );
  const warn = throttledWarning(
    deps.logger,
    'semantic cache unavailable; exact cache only',
    ERROR_LOG_INTERVAL_MS,
  );
  return new SemanticCache({
    maxEntries,
    share: deps.redis ? new RedisSemanticShare(deps.redis, deps.redisKeys, { maxEntries }) : undefined,
    onError: (part, error) => warn({ part }, error),
  });
}
