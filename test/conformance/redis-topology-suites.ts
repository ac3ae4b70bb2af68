/**
 * Every Redis store's conformance suite (rate limits, concurrency, budgets,
 * breakers, the BullMQ job queue) against one Redis topology: the runners
 * redis-sentinel.test.ts and redis-cluster.test.ts start a real Sentinel set
 * or Cluster and pass its target here, so the same cases that hold on one
 * server are shown to hold there (on a cluster with the hash-tagged names).
 */

import { BullJobQueue } from '../../src/jobs/bullmq-job-queue.ts';
import { RedisConcurrencyStore } from '../../src/limits/concurrency-store.ts';
import { RedisBudgetStore } from '../../src/limits/redis-budget-store.ts';
import { RedisRateLimitStore } from '../../src/limits/redis-rate-limit-store.ts';
import type { BreakerStore } from '../../src/resilience/breaker-store.ts';
import { RedisBreakerStore } from '../../src/resilience/breaker-store-redis.ts';
import { connectRedis } from '../../src/store/redis.ts';
import type { RedisTarget } from '../../src/store/redis-topology.ts';
import { breakerStoreConformance } from './breaker-store.ts';
import { budgetStoreConformance } from './budget-store.ts';
import { concurrencyStoreConformance } from './concurrency-store.ts';
import { jobQueueConformance } from './job-queue.ts';
import { rateLimitStoreConformance } from './rate-limit-store.ts';
import { caseKeys, deleteUnder, redisStores } from './redis-stores.ts';

const quiet = { warn: () => {}, info: () => {} };

/** `target` resolves once the topology is up (it is started by the first case). */
export function redisTopologySuites(mode: string, target: () => Promise<RedisTarget>): void {
  rateLimitStoreConformance(mode, async () => ({
    ...redisStores((redis, keys) => new RedisRateLimitStore(redis, keys), { target: await target() }),
    advance: () => {},
    shortWindowMs: 200,
  }));

  concurrencyStoreConformance(mode, async () =>
    redisStores((redis, keys) => new RedisConcurrencyStore(redis, keys, 200), { target: await target() }),
  );

  budgetStoreConformance(mode, async () =>
    redisStores((redis, keys) => new RedisBudgetStore(redis, keys), { target: await target() }),
  );

  breakerStoreConformance(mode, async () => {
    const at = await target();
    const keys = caseKeys(at);
    const redis = connectRedis(at);
    await redis.ping();
    const stores: BreakerStore[] = [];
    return {
      // Each a separate subscriber connection, as separate gateway instances have.
      open: async () => {
        const store = await RedisBreakerStore.start(redis, quiet, { keys });
        stores.push(store);
        return store;
      },
      shortTtlMs: 25,
      close: async () => {
        await Promise.all(stores.map((s) => s.close()));
        await deleteUnder(redis, keys);
        redis.disconnect();
      },
    };
  });

  jobQueueConformance(mode, async () => {
    const at = await target();
    const keys = caseKeys(at);
    const queues: BullJobQueue[] = [];
    return {
      async open(options = {}) {
        const queue = new BullJobQueue({
          redis: at,
          keys,
          heartbeatMs: 50,
          ...(options.shortLease ? { leaseMs: 600, stalledIntervalMs: 200 } : {}),
        });
        queues.push(queue);
        return queue;
      },
      async close() {
        await Promise.all(queues.map((queue) => queue.close()));
        const redis = connectRedis(at);
        try {
          await deleteUnder(redis, keys);
        } finally {
          redis.disconnect();
        }
      },
    };
  });
}
