/**
 * `storage.redis_sentinel` and `storage.redis_cluster`: the alternatives to
 * `storage.redis_url` (at most one of the three; load.ts checks). Connected
 * by src/store/redis.ts.
 */
import { z } from 'zod';

const hostPort = z
  .string()
  .regex(/^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+):([1-9]\d{0,4})$/, { error: 'expected host:port' })
  .refine((text) => Number(text.slice(text.lastIndexOf(':') + 1)) <= 65_535, { error: 'port above 65535' });

const secret = z.string().min(1);

export const redisSentinelSchema = z.strictObject({
  /** The primary's name, as in the sentinels' `sentinel monitor <name> ...`. */
  name: z.string().min(1).max(200),
  /** Sentinels to ask where the primary is; any one answering is enough. */
  sentinels: z.array(hostPort).min(1, { error: 'expected at least one sentinel' }),
  username: z.string().min(1).optional(),
  /** The primary's (and replicas') password. */
  password: secret.optional(),
  /** The sentinels' own password, when they have one (`requirepass` on sentinels). */
  sentinel_password: secret.optional(),
  db: z.number().int().min(0).max(255).optional(),
});

export const redisClusterSchema = z.strictObject({
  /** Some of the cluster's nodes; the others are discovered from them. */
  nodes: z.array(hostPort).min(1, { error: 'expected at least one node' }),
  username: z.string().min(1).optional(),
  password: secret.optional(),
});
