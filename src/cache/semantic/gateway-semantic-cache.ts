/**
 * The gateway's semantic tier, built from config: none unless a model has
 * `cache.semantic.enabled`; shared through Redis when `storage.redis_url` is set.
 */
import type { Redis } from 'ioredis';
import type { Config } from '../../config/schema.ts';
import type { RedisKeys } from '../../store/redis-keys.ts';
import { LEXICAL_DIMENSIONS } from './lexical-embedder.ts';
import { RedisSemanticShare } from './redis-semantic-share.ts';
import { SemanticCache } from './semantic-cache.ts';

/** One log line per failing part per this long. */
const ERROR_LOG_INTERVAL_MS = 10_000;

export function createGatewaySemanticCache(
  config: Config,
  deps: { redis: Redis | undefined; redisKeys: RedisKeys; logger: { warn(obj: object, msg: string): void } },
): SemanticCache | undefined {
  if (!Object.values(config.models).some((model) => model.cache.enabled && model.cache.semantic.enabled)) {
    return undefined;
  }
  // The index takes at most a quarter of the cache's memory bound, counted in lexical vectors.
  const maxEntries = Math.max(
    1_000,
    Math.floor((config.cache.memory_mb * 1024 * 1024) / 4 / (LEXICAL_DIMENSIONS * 4)),
  );
  const lastLogged = new Map<string, number>();
  return new SemanticCache({
    maxEntries,
    share: deps.redis ? new RedisSemanticShare(deps.redis, deps.redisKeys, { maxEntries }) : undefined,
    onError: (what, error) => {
      const now = Date.now();
      if (now - (lastLogged.get(what) ?? 0) < ERROR_LOG_INTERVAL_MS) return;
      lastLogged.set(what, now);
      deps.logger.warn(
        { part: what, err: error instanceof Error ? error.message.slice(0, 200) : 'failed' },
        'semantic cache unavailable; exact cache only',
      );
    },
  });
}
