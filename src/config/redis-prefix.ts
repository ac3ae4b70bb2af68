/**
 * The rule for `storage.redis_prefix`, shared by the config schema and by
 * `RedisKeys` (src/store/redis-keys.ts), which builds every Redis name from it.
 *
 * 1 to 64 printable ASCII characters, no spaces, ending in `:`. The colon keeps
 * the names readable and `redis-cli --scan --pattern 'acme-prod:*'` exact; the
 * length bound keeps keys cheap to hash and to read.
 */

export const DEFAULT_REDIS_PREFIX = 'switchyard:';

export const MAX_REDIS_PREFIX_LENGTH = 64;

const PATTERN = new RegExp(`^[!-~]{0,${MAX_REDIS_PREFIX_LENGTH - 1}}:$`);

export const REDIS_PREFIX_RULE = `1-${MAX_REDIS_PREFIX_LENGTH} printable characters without spaces, ending in ':' (such as 'switchyard:' or 'acme-prod:')`;

export function isValidRedisPrefix(prefix: string): boolean {
  return PATTERN.test(prefix);
}
