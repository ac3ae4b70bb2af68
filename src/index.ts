/**
 * Switchyard as a library: the gateway's parts, usable in-process. The
 * gateway (server/gateway.ts) is assembled from these same pieces: config,
 * providers, the model table and Router, the dispatch steps and walk, the
 * billing recorder and ledger, breakers and their stores, keys, metrics.
 */

export { validateChatRequest, validateEmbeddingRequest } from './api/openai/openai-validate.ts';
export { KeyStore } from './auth/key-store.ts';
export { BatchAttempt, type BatchMember, BatchRecorder } from './billing/batch-recorder.ts';
export { promptOnly, upstreamBill } from './billing/bills.ts';
export { embeddingBill } from './billing/embedding-usage.ts';
export { StreamTally } from './billing/stream-tally.ts';
export {
  Attempt,
  type AttemptResult,
  type LedgerWriter,
  type RequestInfo,
  type StreamEnding,
  UsageRecorder,
} from './billing/usage-recorder.ts';
export { apportion, shareBill, shareUsage } from './billing/usage-shares.ts';
export { cacheKey, cacheScope, canonicalJson } from './cache/cache-key.ts';
export type { CacheEntry, CacheFilter, CacheKey, CacheStore, CacheTier } from './cache/cache-store.ts';
export { MemoryCacheStore } from './cache/memory-cache-store.ts';
export { CacheUnavailableError, RedisCacheStore } from './cache/redis-cache-store.ts';
export {
  type CacheHit,
  type CacheStats,
  ResponseCache,
  type ResponseCacheOptions,
} from './cache/response-cache.ts';
export { cosine, type Embedder, normalize } from './cache/semantic/embedder.ts';
export { LexicalEmbedder } from './cache/semantic/lexical-embedder.ts';
export { RedisSemanticShare } from './cache/semantic/redis-semantic-share.ts';
export {
  type EmbeddedPrompt,
  SemanticCache,
  type SemanticShare,
  type SharedPrompt,
} from './cache/semantic/semantic-cache.ts';
export { type SemanticPrompt, semanticPrompt } from './cache/semantic/semantic-prompt.ts';
export { type IndexedPrompt, type NearestPrompt, VectorIndex } from './cache/semantic/vector-index.ts';
export { SqlCacheStore } from './cache/sql-cache-store.ts';
export { ConfigError, loadConfig, validateConfig } from './config/load.ts';
export type { Config, ModelConfig, ProviderConfig } from './config/schema.ts';
export { ERRORS, type ErrorCode, GatewayError, openAIErrorBody, toGatewayError } from './core/errors.ts';
export {
  type ModelPrice,
  PRICES_CHECKED,
  PriceTable,
  /** The price table is the cost calculator: `costMicros(model, usage)` in integer micro-dollars. */
  PriceTable as CostCalculator,
} from './core/price-table.ts';
export type * from './core/types.ts';
export {
  type AttemptCall,
  type DispatchOptions,
  type DispatchReport,
  dispatchChat,
  dispatchChatStream,
  dispatchEmbeddings,
  dispatchStreamWith,
  dispatchWith,
  GATEWAY_STEPS,
  newDispatchReport,
  type StreamStart,
} from './dispatch/dispatch.ts';
export {
  type BatchedEmbedding,
  batchableText,
  EmbeddingBatches,
  type EmbeddingBatchesOptions,
} from './dispatch/embedding-batches.ts';
export { BullJobQueue, type BullJobQueueOptions } from './jobs/bullmq-job-queue.ts';
export {
  type AddJobOptions,
  JOB_STATUSES,
  type JobContext,
  type JobHandler,
  type JobQueue,
  type JobRecord,
  type JobStatus,
  PermanentJobError,
  QUEUE_NAMES,
  type QueueCounts,
  type QueueName,
  type QueueWorker,
  type WorkOptions,
} from './jobs/job-queue.ts';
export { SqlJobQueue, type SqlJobQueueOptions } from './jobs/sql-job-queue.ts';
export { type LedgerRow, UsageLedger } from './ledger/usage-ledger.ts';
export {
  type BudgetAlert,
  BudgetGuard,
  type BudgetGuardOptions,
  type BudgetReservation,
} from './limits/budget-guard.ts';
export { type BudgetPeriod, budgetPeriods } from './limits/budget-periods.ts';
export {
  type BudgetDecision,
  type BudgetStore,
  MemoryBudgetStore,
  type PeriodState,
  type SpendSeed,
} from './limits/budget-store.ts';
export {
  type ConcurrencySlot,
  type ConcurrencyStore,
  MemoryConcurrencyStore,
  RedisConcurrencyStore,
} from './limits/concurrency-store.ts';
export {
  type Limits,
  type LimitUnit,
  mergeLimits,
  type WindowRule,
  windowRules,
} from './limits/limit-rules.ts';
export { MemoryRateLimitStore } from './limits/memory-rate-limit-store.ts';
export type { RateLimitStore, RuleState, WindowCharge, WindowDecision } from './limits/rate-limit-store.ts';
export { type RateLimitDecision, RateLimiter, type RateLimiterOptions } from './limits/rate-limiter.ts';
export { RedisBudgetStore } from './limits/redis-budget-store.ts';
export { RedisRateLimitStore } from './limits/redis-rate-limit-store.ts';
// Health checks: the gateway's checker is `gateway.context.health` (register your own checks on it),
// or build one for your own service (the seed's HealthChecker / DetailedHealthChecker).
export {
  type CheckResult,
  type HealthCheck,
  HealthChecker,
  type HealthCheckOptions,
  type HealthSnapshot,
  type HealthStatus,
} from './observability/health-checker.ts';
export { createLogger } from './observability/logger.ts';
export { LoopDelay, type LoopDelayStats } from './observability/loop-delay.ts';
export { GatewayMetrics } from './observability/metrics.ts';
export { registerSystemChecks, type SystemCheckOptions } from './observability/system-checks.ts';
export {
  createTracing,
  NO_TRACING,
  NOOP_SPAN,
  type TraceSpan,
  type Tracing,
  type TracingOptions,
} from './observability/tracing.ts';
export { MockProvider } from './providers/mock/index.ts';
export { OpenAIProvider } from './providers/openai/index.ts';
export { createProvider, createProviders } from './providers/registry.ts';
export { SseParser } from './providers/sse.ts';
export type { AttemptContext, ProviderAdapter, Timeouts } from './providers/types.ts';
export { withBreaker } from './resilience/breaker-step.ts';
export {
  type BreakerState,
  type BreakerStore,
  MemoryBreakerStore,
  type SharedBreakerState,
} from './resilience/breaker-store.ts';
export { RedisBreakerStore, type RedisBreakerStoreOptions } from './resilience/breaker-store-redis.ts';
export { withBudget } from './resilience/budget-step.ts';
export {
  type BreakerPermit,
  CircuitBreaker,
  type CircuitBreakerOptions,
  CircuitOpenError,
  isUpstreamFailure,
} from './resilience/circuit-breaker.ts';
export {
  AttemptSlot,
  composeSteps,
  type DispatchState,
  RetryBudgetExhaustedError,
  type Step,
  type Wrapper,
} from './resilience/dispatch-step.ts';
export { HedgeLostError, type HedgeOptions, hedge, LatencySketch } from './resilience/hedge.ts';
export { withHedge } from './resilience/hedge-step.ts';
export { Resilience, type ResilienceOptions } from './resilience/resilience.ts';
export { backoffDelay, RetryBudget, retryDelay, sleep } from './resilience/retry.ts';
export { withRetry } from './resilience/retry-step.ts';
export type { AttemptObserver } from './routing/attempt-observer.ts';
export type {
  ComplexityClassifier,
  ComplexityThresholds,
  ComplexityVerdict,
} from './routing/complexity/classifier.ts';
export { type ClassifierReport, evaluateClassifier } from './routing/complexity/evaluation.ts';
export { heuristicClassifier } from './routing/complexity/heuristic-classifier.ts';
export {
  type JudgeAnswer,
  type JudgeAsk,
  JudgeClassifier,
  type JudgeOptions,
} from './routing/complexity/judge.ts';
export { judgeRequestFor, parseJudgeAnswer } from './routing/complexity/judge-prompt.ts';
export { type LabelledPrompt, labelledRequest, readLabelledSet } from './routing/complexity/labelled-set.ts';
export { NearestNeighbourClassifier } from './routing/complexity/nearest-neighbour.ts';
export {
  type ComplexityDecision,
  type ComplexityPolicy,
  decideComplexity,
} from './routing/complexity/safety-valve.ts';
export { complexityScore, complexitySignals, tierOf } from './routing/complexity-score.ts';
export {
  buildModelTable,
  type ModelRoute,
  type RouteEntry,
  type RouteTarget,
} from './routing/model-table.ts';
export {
  type AttemptOutcome,
  type ModelTargetsView,
  type RouteCaller,
  Router,
  type RouterOptions,
  type RoutingDecision,
} from './routing/router.ts';
export {
  complexityStrategy,
  costStrategy,
  fallbackStrategy,
  leastLatencyStrategy,
  type RoutingStrategy,
  STRATEGIES,
  type StrategyContext,
  weightedStrategy,
} from './routing/strategies/index.ts';
export { type AuditEntry, AuditLog, type AuditRecord } from './server/audit-log.ts';
export { Gateway, type GatewayOptions } from './server/gateway.ts';
export { migrate } from './store/migrations.ts';
export { connectRedis } from './store/redis.ts';
export { RedisKeys } from './store/redis-keys.ts';
export { type Database, openDatabase } from './store/sql.ts';
export { Batcher, type BatcherOptions, type BatchTimer } from './util/batcher.ts';
export { EmbeddingBatcher, type EmbeddingBatcherOptions } from './util/embedding-batcher.ts';
export { seededRandom } from './util/random.ts';
export { parseRetryAfter } from './util/retry-after.ts';
