/**
 * Rate-limit decision overhead: µs per `RateLimiter.admit` (a requests rule and
 * a tokens rule, as a limited key has) in-process, and against a real Redis
 * (a private redis-server on loopback): one at a time (the latency a request
 * pays) and 50 in flight (the throughput one connection gives).
 *
 * Run alone: node bench/limits.ts
 */
import { MemoryRateLimitStore } from '../src/limits/memory-rate-limit-store.ts';
import { RateLimiter } from '../src/limits/rate-limiter.ts';
import { RedisRateLimitStore } from '../src/limits/redis-rate-limit-store.ts';
import { connectRedis } from '../src/store/redis.ts';
import { RedisKeys } from '../src/store/redis-keys.ts';
import { startRedis } from '../test/helpers/services.ts';

export interface LimitsBench {
  memoryUs: number;
  redisSequentialUs: number;
  redisConcurrentUs: number;
}

const LIMITS = { requests_per_minute: 1_000_000_000, tokens_per_minute: 1_000_000_000 };
const SUBJECTS = 1_000;

async function sequential(limiter: RateLimiter, n: number): Promise<number> {
  const started = performance.now();
  for (let i = 0; i < n; i++) await limiter.admit(`key:${i % SUBJECTS}`, LIMITS, 100);
  return ((performance.now() - started) * 1000) / n;
}

async function concurrent(limiter: RateLimiter, n: number, inFlight: number): Promise<number> {
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (next < n) await limiter.admit(`key:${next++ % SUBJECTS}`, LIMITS, 100);
    }),
  );
  return ((performance.now() - started) * 1000) / n;
}

export async function benchLimits(): Promise<LimitsBench> {
  const memory = new RateLimiter(new MemoryRateLimitStore());
  await sequential(memory, 20_000);
  const memoryUs = await sequential(memory, 100_000);
  const server = await startRedis();
  const redis = connectRedis(server.url);
  try {
    await redis.ping();
    const shared = new RateLimiter(new RedisRateLimitStore(redis, new RedisKeys('bench:')), {
      onStoreError: (error) => {
        throw error;
      },
    });
    await sequential(shared, 2_000);
    const redisSequentialUs = await sequential(shared, 5_000);
    const redisConcurrentUs = await concurrent(shared, 20_000, 50);
    return {
      memoryUs: round2(memoryUs),
      redisSequentialUs: round2(redisSequentialUs),
      redisConcurrentUs: round2(redisConcurrentUs),
    };
  } finally {
    redis.disconnect();
    await server.stop();
  }
}

export function limitsLine(r: LimitsBench): string {
  return `rate-limit µs/decision               in-process ${r.memoryUs}; Redis ${r.redisSequentialUs} one at a time, ${r.redisConcurrentUs} with 50 in flight (requests + tokens rules, 1,000 keys)`;
}

const round2 = (n: number): number => Math.round(n * 100) / 100;

if (import.meta.main) console.log(limitsLine(await benchLimits()));
