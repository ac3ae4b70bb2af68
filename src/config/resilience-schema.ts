/**
 * Config for retries, circuit breakers and hedging (per model) and the
 * fleet-wide retry budget (top level). Defaults follow the reliability spec:
 * 2 same-target retries per request within a 20 % budget (floor 3 in flight),
 * breakers that only trip on a real outage, no hedging.
 */
import { z } from 'zod';

const ms = z.number().int().positive();

export const retriesSchema = z.strictObject({
  /**
   * Retries on the same target, per request (fallbacks to other targets are not counted here).
   * 2 by default, as the OpenAI SDKs; the fleet-wide retry budget keeps an outage from
   * multiplying upstream traffic whatever this says.
   */
  max: z.number().int().min(0).max(10).default(2),
  /** Backoff before retry n is uniform in [0, min(max_backoff_ms, base_ms * 2^n)) (full jitter). */
  base_ms: ms.default(100),
  max_backoff_ms: ms.default(5_000),
  /** A longer Retry-After is not waited out: the request falls over to the next target instead. */
  max_retry_after_ms: ms.default(10_000),
});

export const circuitBreakerSchema = z.strictObject({
  enabled: z.boolean().default(true),
  /** Consecutive upstream failures that open the breaker. */
  failure_threshold: z.number().int().positive().default(5),
  /** Failure ratio over the rolling window that opens it (once `min_requests` were seen). */
  failure_rate: z.number().gt(0).max(1).default(0.5),
  window_ms: ms.default(30_000),
  min_requests: z.number().int().positive().default(20),
  recovery_timeout_ms: ms.default(60_000),
  /** Concurrent probes admitted while half-open, across all instances. */
  half_open_max_probes: z.number().int().positive().default(1),
  /** Probe successes that close it again. */
  success_threshold: z.number().int().positive().default(1),
});

export const hedgingSchema = z.strictObject({
  enabled: z.boolean().default(false),
  /** Fixed delay, or `p95`: the target's observed 95th percentile time to first byte. */
  delay_ms: z.union([ms, z.literal('p95')]).default(1_000),
  /** Extra attempts in flight at once, beyond the first. */
  max_hedges: z.number().int().min(1).max(3).default(1),
});

export const resilienceSchema = z.strictObject({
  /** Each request earns this many retry tokens; each retry, fallback or hedge spends one. */
  retry_budget_ratio: z.number().min(0).max(1).default(0.2),
  /** Retries allowed in flight at once with no tokens left, so a quiet gateway can still retry (Envoy's min_retry_concurrency). */
  retry_budget_min_concurrent: z.number().int().min(0).default(3),
});
