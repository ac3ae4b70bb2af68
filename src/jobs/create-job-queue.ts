/**
 * The queue config asks for: the SQL store's (default) or BullMQ on the
 * deployment's Redis (`jobs.backend: redis`).
 */
import type { Config } from '../config/schema.ts';
import type { RedisKeys } from '../store/redis-keys.ts';
import { redisTargetOf } from '../store/redis-topology.ts';
import type { Database } from '../store/sql.ts';
import { BullJobQueue } from './bullmq-job-queue.ts';
import type { JobQueue } from './job-queue.ts';
import { SqlJobQueue } from './sql-job-queue.ts';

export function createJobQueue(
  config: Config,
  deps: { database: Database; redisKeys: RedisKeys; onError: (error: unknown) => void },
): JobQueue {
  const { lease_ms: leaseMs } = config.jobs;
  if (config.jobs.backend === 'redis') {
    // Config validation refuses `backend: redis` without a Redis.
    return new BullJobQueue({
      redis: redisTargetOf(config.storage)!,
      keys: deps.redisKeys,
      leaseMs,
      stalledIntervalMs: Math.min(5_000, Math.max(500, Math.floor(leaseMs / 2))),
      onError: deps.onError,
    });
  }
  return new SqlJobQueue(deps.database, { leaseMs, pollMs: config.jobs.poll_ms, onError: deps.onError });
}
