/**
 * Everything a route needs, assembled once by the gateway and passed in.
 * Routes depend on this interface, not on how the parts were built.
 */

import type { KeyStore } from '../auth/key-store.ts';
import type { KeySync } from '../auth/key-sync.ts';
import type { AttemptPricer } from '../billing/attempt-pricer.ts';
import type { CacheInvalidations } from '../cache/cache-invalidations.ts';
import type { ResponseCache } from '../cache/response-cache.ts';
import type { Embedder } from '../cache/semantic/embedder.ts';
import type { SemanticCache } from '../cache/semantic/semantic-cache.ts';
import type { Config } from '../config/schema.ts';
import type { EmbeddingBatches } from '../dispatch/embedding-batches.ts';
import type { UsageLedger } from '../ledger/usage-ledger.ts';
import type { HealthChecker } from '../observability/health-checker.ts';
import type { Logger } from '../observability/logger.ts';
import type { GatewayMetrics } from '../observability/metrics.ts';
import type { Tracing } from '../observability/tracing.ts';
import type { ProviderAdapter } from '../providers/types.ts';
import type { Resilience } from '../resilience/resilience.ts';
import type { ModelRoute } from '../routing/model-table.ts';
import type { Router } from '../routing/router.ts';
import type { RedisConnection } from '../store/redis.ts';
import type { Database } from '../store/sql.ts';
import type { WebhookSender } from '../webhooks/webhook-sender.ts';
import type { AuditLog } from './audit-log.ts';
import type { DeliverWebhook, JobServices } from './jobs.ts';
import type { RequestLimits } from './request-limits.ts';

export interface GatewayState {
  /** Set at SIGTERM: readiness fails, new work is refused once the listener closes. */
  draining: boolean;
  readonly startedAt: number;
}

export interface GatewayContext {
  readonly config: Config;
  readonly logger: Logger;
  readonly metrics: GatewayMetrics;
  /** OpenTelemetry traces (NO_TRACING unless an OTLP endpoint is configured: src/observability/tracing.ts). */
  readonly tracing: Tracing;
  readonly keys: KeyStore;
  readonly keySync: KeySync;
  readonly ledger: UsageLedger;
  /** Prices each attempt's ledger row (the price table with config's `pricing`). */
  readonly pricer: AttemptPricer;
  readonly providers: Map<string, ProviderAdapter>;
  readonly models: Map<string, ModelRoute>;
  readonly router: Router;
  /** Circuit breakers, retry budget and latency sketches per target. */
  readonly resilience: Resilience;
  readonly database: Database;
  readonly redis: RedisConnection | undefined;
  /** Rate limits of keys and tiers (shared through Redis when it is configured). */
  readonly limits: RequestLimits;
  /** Signed webhook deliveries (budget alerts), when `webhooks.alert_url` is configured. */
  readonly webhooks: WebhookSender | undefined;
  /** The job queue, files and batches (POST /v1/jobs, the Files and Batch API). */
  readonly jobs: JobServices;
  /** Client-given webhook URLs: checked against the policy, delivered signed; absent without `webhooks.secret`. */
  readonly webhookDelivery:
    | { checkUrl(url: string): string; deliver: DeliverWebhook; close(): Promise<void> }
    | undefined;
  /** The response cache, when any model has caching on. */
  readonly cache: ResponseCache | undefined;
  /** Tells other instances (through Redis) that the cache was invalidated; absent without Redis or a cache. */
  readonly cacheInvalidations: CacheInvalidations | undefined;
  /** The semantic tier, when any model has `cache.semantic.enabled`. */
  readonly semantic: SemanticCache | undefined;
  /** A model's semantic embedder by its configured name (`lexical` or a served embeddings model). */
  readonly embedderFor: (name: string) => Embedder;
  /** Observes each cache lookup's duration (seconds). */
  readonly observeCacheLookup: (seconds: number) => void;
  /** Shared upstream calls for single-input embeddings, when any model has `batching.enabled`. */
  readonly embeddingBatches?: EmbeddingBatches | undefined;
  /** Background health checks the /health endpoints serve; library users register their own. */
  readonly health: HealthChecker;
  /** Admin actions: one `audit: true` log line and one `audit_log` row each. */
  readonly audit: AuditLog;
  readonly state: GatewayState;
}
