/**
 * The job queue suite against BullJobQueue on a real Redis (the one the test
 * runner starts): each queue its own connections, each case its own key
 * prefix, whose keys are deleted when the case closes.
 */
import { randomBytes } from 'node:crypto';
import { BullJobQueue } from '../../src/jobs/bullmq-job-queue.ts';
import { connectRedis } from '../../src/store/redis.ts';
import { RedisKeys } from '../../src/store/redis-keys.ts';
import { testRedisUrl } from '../helpers/services.ts';
import { jobQueueConformance } from './job-queue.ts';

const run = randomBytes(4).toString('hex');
let counter = 0;

jobQueueConformance('redis', async () => {
  const keys = new RedisKeys(`conformance${run}-${++counter}:`);
  const queues: BullJobQueue[] = [];
  return {
    async open(options = {}) {
      const queue = new BullJobQueue({
        redis: testRedisUrl(),
        keys,
        // Cancels are seen soon: the cases wait on them.
        heartbeatMs: 50,
        ...(options.shortLease ? { leaseMs: 600, stalledIntervalMs: 200 } : {}),
      });
      queues.push(queue);
      return queue;
    },
    async close() {
      await Promise.all(queues.map((queue) => queue.close()));
      const redis = connectRedis(testRedisUrl());
      try {
        const found = await redis.keys(keys.pattern);
        if (found.length > 0) await redis.del(...found);
      } finally {
        redis.disconnect();
      }
    },
  };
});
