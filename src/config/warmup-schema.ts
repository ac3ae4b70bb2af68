/**
 * `warmup:`: what the gateway does at start so the first requests after a
 * deploy or a restart are not the slow ones (src/server/warmup/).
 */
import { z } from 'zod';

export const warmupSchema = z.strictObject({
  /**
   * Pooled connections opened to each HTTP provider at start (per connect
   * timeout its models use), each by one unbilled request that spends no
   * tokens (listing models), so the first real requests skip the TCP and TLS
   * handshakes. 0: none (connections open on first use).
   * @default 0
   */
  connections: z.number().int().min(0).max(64).default(0),
  /**
   * How often the warm connections are used again, so neither side's idle
   * timeout closes them (the gateway's own keep-alive is 30 s; providers'
   * are often shorter); one that closed anyway is opened again. 0: opened
   * once at start.
   * @default 20000
   */
  keep_warm_interval_ms: z.number().int().min(0).default(20_000),
  /**
   * One small chat request to every target at start (a self-hosted model
   * server loads the model; caches fill), unbilled to any key and recorded in
   * the ledger with route `warmup`. With `--workers N`, sent by one worker.
   */
  requests: z
    .strictObject({
      enabled: z.boolean().default(false),
      /** The models (names clients ask for) whose targets are warmed; empty: every model. */
      models: z.array(z.string().min(1)).default([]),
      prompt: z.string().min(1).max(10_000).default('Hello'),
      max_tokens: z.number().int().min(1).max(1_000).default(1),
    })
    .prefault({}),
});

export type WarmupConfig = z.infer<typeof warmupSchema>;
