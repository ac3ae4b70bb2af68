/**
 * The Redis stores' conformance suites through Sentinel: a real primary,
 * replica and three `redis-sentinel` processes on loopback; the stores find
 * the primary by asking the sentinels (`storage.redis_sentinel`).
 */
import { after } from 'node:test';
import type { RedisTarget } from '../../src/store/redis-topology.ts';
import { type RedisSentinelSet, startRedisSentinelSet } from '../helpers/redis-topologies.ts';
import { redisTopologySuites } from './redis-topology-suites.ts';

let started: Promise<RedisSentinelSet> | undefined;
after(async () => (await started)?.stop());

redisTopologySuites('redis sentinel', async (): Promise<RedisTarget> => {
  started ??= startRedisSentinelSet();
  const set = await started;
  return { sentinel: { name: set.name, sentinels: set.sentinels } };
});
