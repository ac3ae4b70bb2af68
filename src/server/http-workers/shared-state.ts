/**
 * Many HTTP worker processes make one gateway only if what must be shared is
 * shared: rate-limit windows, budgets, concurrency slots, circuit breakers,
 * the response cache and key revocations all live in Redis when one is
 * configured, and in each process's memory otherwise (where a limit of 100
 * a minute would admit 100 per worker). So more than one worker needs Redis.
 */
import type { Config } from '../../config/schema.ts';

/** The Redis settings that make state shared: a URL, or (where the schema has them) Sentinel or Cluster. */
const SHARED_REDIS_SETTINGS = ['redis_url', 'redis_sentinel', 'redis_cluster'] as const;

export function hasSharedStateStore(config: Config): boolean {
  // Read by name: Sentinel and Cluster are alternatives to redis_url the schema may carry.
  const storage = config.storage as Record<string, unknown>;
  return SHARED_REDIS_SETTINGS.some((name) => storage[name] !== undefined && storage[name] !== null);
}

/** Why `--workers N` is refused without Redis, and the ways out. */
export function sharedStateRequiredMessage(workers: number, requested: string): string {
  return [
    `--workers ${requested} starts ${workers} HTTP worker processes, and they need Redis to share state:`,
    '  rate limits, budgets, concurrency slots, circuit breakers, the response cache and key revocations',
    `  would otherwise be kept per process (a limit of 100 a minute would admit ${workers * 100}).`,
    '  Set storage.redis_url (or REDIS_URL), or run one process (--workers 1) and scale with instances sharing Redis.',
  ].join('\n');
}
