/**
 * The gateway: builds every part from config, serves, and shuts down cleanly.
 *
 * Start order: storage (migrated under a lock, so no instance serves on an old
 * schema) → keys → providers → HTTP. Stop order on SIGTERM: readiness fails at
 * once; the listener stops accepting; in-flight requests and streams finish
 * (up to `server.shutdown.grace_ms`, then their sockets are closed); the ledger
 * is flushed; connections closed; logs flushed.
 */
import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { KeyStore } from '../auth/key-store.ts';
import { KeySync } from '../auth/key-sync.ts';
import { type MasterKey, resolveMasterKey } from '../auth/master-key.ts';
import { attemptPricer } from '../billing/attempt-pricer.ts';
import { CacheInvalidations } from '../cache/cache-invalidations.ts';
import { createGatewayCache } from '../cache/gateway-cache.ts';
import type { ResponseCache } from '../cache/response-cache.ts';
import type { Embedder } from '../cache/semantic/embedder.ts';
import { createGatewaySemanticCache } from '../cache/semantic/gateway-semantic-cache.ts';
import { LexicalEmbedder } from '../cache/semantic/lexical-embedder.ts';
import type { SemanticCache } from '../cache/semantic/semantic-cache.ts';
import type { Config } from '../config/schema.ts';
import { PriceTable } from '../core/price-table.ts';
import { EmbeddingBatches } from '../dispatch/embedding-batches.ts';
import { createJobQueue } from '../jobs/create-job-queue.ts';
import { type JobQueue, QUEUE_NAMES, type QueueName, type QueueWorker } from '../jobs/job-queue.ts';
import { subjectSpentMicros } from '../ledger/key-spend.ts';
import { UsageLedger } from '../ledger/usage-ledger.ts';
import { BudgetGuard } from '../limits/budget-guard.ts';
import { MemoryBudgetStore } from '../limits/budget-store.ts';
import { MemoryConcurrencyStore, RedisConcurrencyStore } from '../limits/concurrency-store.ts';
import { MemoryRateLimitStore } from '../limits/memory-rate-limit-store.ts';
import { RateLimiter } from '../limits/rate-limiter.ts';
import { RedisBudgetStore } from '../limits/redis-budget-store.ts';
import { RedisRateLimitStore } from '../limits/redis-rate-limit-store.ts';
import { registerCacheMetrics } from '../observability/cache-metrics.ts';
import { HealthChecker } from '../observability/health-checker.ts';
import { registerHealthMetrics } from '../observability/health-metrics.ts';
import { createLogger, flushLogger, type Logger } from '../observability/logger.ts';
import { LoopDelay } from '../observability/loop-delay.ts';
import { GatewayMetrics } from '../observability/metrics.ts';
import { registerSystemChecks } from '../observability/system-checks.ts';
import { createTracing, type Tracing } from '../observability/tracing.ts';
import { createProviders } from '../providers/registry.ts';
import { RedisBreakerStore } from '../resilience/breaker-store-redis.ts';
import { Resilience } from '../resilience/resilience.ts';
import { buildModelTable } from '../routing/model-table.ts';
import { Router } from '../routing/router.ts';
import { connectRedis, type RedisConnection } from '../store/redis.ts';
import { redisKeysOf, redisTargetOf } from '../store/redis-topology.ts';
import { prepareSchema } from '../store/schema-gate.ts';
import { openDatabase } from '../store/sql.ts';
import { throttledWarning } from '../util/throttled-warning.ts';
import { WebhookSender } from '../webhooks/webhook-sender.ts';
import { operatorEndpointPolicy } from '../webhooks/webhook-url-policy.ts';
import { buildApp } from './app.ts';
import { AuditLog } from './audit-log.ts';
import { gatewayComplexityClassifiers } from './complexity-classifiers.ts';
import type { GatewayContext, GatewayState } from './context.ts';
import { registerDependencyChecks } from './health-checks.ts';
import { jobWebhooks, startJobWorker } from './job-worker.ts';
import { createJobServices } from './jobs.ts';
import { type MetricsServer, startMetricsServer } from './metrics-server.ts';
import { RequestLimits } from './request-limits.ts';
import { ServedEmbedder } from './served-embedder.ts';
import { ConnectionWarmer, poolsToWarm } from './warmup/connection-warmer.ts';
import { sendWarmupRequests } from './warmup/warmup-requests.ts';

export interface GatewayOptions {
  config: Config;
  /** Defaults to a pino logger on stdout at `config.logging.level`. */
  logger?: Logger;
  /** Overrides `config.storage.database_url` (tests). */
  databaseUrl?: string;
  /**
   * The queues this process works (`switchyard worker --queues`); false: none.
   * Default: every queue when `jobs.workers` is on, else none.
   */
  workQueues?: readonly QueueName[] | false;
  /** Defaults to tracing as the OTEL_* variables configure it (off when no OTLP endpoint is set). */
  tracing?: Tracing;
  /**
   * Whether this process sends `warmup.requests` when they are enabled (with
   * `--workers N`, one worker does). @default true
   */
  warmupRequests?: boolean;
}

/**
 * Pre-warming: the first round of warm connections is awaited (each probe is
 * bounded by the probe timeouts), so the port opens with warm pools; warm-up
 * requests run in the background (a model loading can take minutes).
 */
async function startWarmup(
  context: GatewayContext,
  sendRequests: boolean,
): Promise<{ connections: ConnectionWarmer | undefined; requests: AbortController }> {
  const { warmup } = context.config;
  const connections =
    warmup.connections > 0
      ? new ConnectionWarmer(poolsToWarm(context.models), {
          connections: warmup.connections,
          intervalMs: warmup.keep_warm_interval_ms,
          logger: context.logger,
        })
      : undefined;
  await connections?.start();
  const requests = new AbortController();
  if (warmup.requests.enabled && sendRequests) {
    void sendWarmupRequests(warmup.requests, {
      models: context.models,
      ledger: context.ledger,
      pricer: context.pricer,
      logger: context.logger,
      signal: requests.signal,
    });
  }
  return { connections, requests };
}

export class Gateway {
  readonly context: GatewayContext;
  readonly app: FastifyInstance;
  readonly masterKey: MasterKey;
  /** This process's job worker, when it works any queue. */
  readonly worker: QueueWorker | undefined;
  #closing: Promise<void> | undefined;
  /** The separate /metrics listener, when `server.metrics_port` is set and the gateway listens. */
  metricsServer: MetricsServer | undefined;
  /** Stops what the system health checks keep running (the event-loop delay sampler). */
  #stopSystemChecks: () => void = () => {};
  /** Pre-warming (src/server/warmup/): the keep-warm timer, and warm-up requests still running. */
  #warmup: { connections: ConnectionWarmer | undefined; requests: AbortController } | undefined;

  private constructor(
    context: GatewayContext,
    app: FastifyInstance,
    masterKey: MasterKey,
    worker: QueueWorker | undefined,
  ) {
    this.context = context;
    this.app = app;
    this.masterKey = masterKey;
    this.worker = worker;
  }

  static async create(options: GatewayOptions): Promise<Gateway> {
    const { config } = options;
    const logger = options.logger ?? createLogger({ level: config.logging.level });
    const database = await openDatabase({
      url: options.databaseUrl ?? config.storage.database_url,
      dataDir: config.data_dir,
      replicaUrls: config.storage.replica_urls,
      poolSize: config.storage.pool_size,
      replicaPoolSize: config.storage.replica_pool_size,
      logger,
    });
    let redis: RedisConnection | undefined;
    let resilience: Resilience | undefined;
    let semantic: SemanticCache | undefined;
    let cache: ResponseCache | undefined;
    let invalidations: CacheInvalidations | undefined;
    let alertHooks: WebhookSender | undefined;
    let queue: JobQueue | undefined;
    let tracing: Tracing | undefined;
    let loopDelay: LoopDelay | undefined;
    try {
      // storage.migrate false: an old schema is refused, not migrated (`switchyard migrate` does it).
      const { applied } = await prepareSchema(database, config.storage.migrate);
      if (applied.length > 0) logger.info({ applied }, 'database migrated');
      const masterKey = resolveMasterKey(config.master_key, config.data_dir);
      const keys = new KeyStore(database, masterKey.key);
      await keys.reload();
      // A URL, a Sentinel-managed primary or a Cluster (src/store/redis-topology.ts).
      const redisTarget = redisTargetOf(config.storage);
      redis =
        redisTarget === undefined ? undefined : connectRedis(redisTarget, { name: 'switchyard', logger });
      // Every Redis name below starts with the configured prefix (hash-tagged on a cluster).
      const redisKeys = redisKeysOf(config.storage);
      const keySync = await KeySync.start(keys, { redis, redisKeys, logger });
      const ledger = new UsageLedger(database, {
        flushIntervalMs: config.ledger.flush_interval_ms,
        maxBatch: config.ledger.max_batch,
        ...(config.ledger.spool ? { spoolDir: join(config.data_dir, 'ledger-spool') } : {}),
        logger,
      });
      // One price table: billing and the `cost` routing strategy read the same prices.
      const prices = new PriceTable(config.pricing);
      const pricer = attemptPricer(prices, logger);
      const providers = createProviders(config.providers);
      const models = buildModelTable(config, providers, prices);
      // One event-loop delay sampler for the health check and /metrics (loop-delay.ts).
      const sampler = new LoopDelay();
      loopDelay = sampler;
      const metrics = new GatewayMetrics(models.keys(), () => ledger.stats.queued, sampler);
      const tracingWarning = throttledWarning(logger, 'tracing', 60_000);
      tracing =
        options.tracing ??
        (await createTracing({
          captureContent: config.tracing.capture_content,
          warn: (problem) => tracingWarning({ problem: problem.slice(0, 200) }, undefined),
        }));
      resilience = new Resilience(config, models, {
        registry: metrics.registry,
        ...(redis ? { store: await RedisBreakerStore.start(redis, logger, { keys: redisKeys }) } : {}),
      });
      await resilience.sync();
      // No `isAvailable` here: dispatch skips open breakers itself (and says so in
      // x-switchyard-fallback-reason), and secondaries already follow primaries.
      cache = createGatewayCache(config, { redis, redisKeys, database, logger });
      semantic = cache ? createGatewaySemanticCache(config, { redis, redisKeys, logger }) : undefined;
      // Another instance's DELETE /admin/cache reaches this one's memory tier and semantic index.
      invalidations =
        redis && cache
          ? await CacheInvalidations.start(redis, redisKeys, {
              instance: randomBytes(8).toString('hex'),
              onRemote: (filter) => {
                void cache?.invalidateMemory(filter);
                semantic?.invalidate(filter);
              },
            })
          : undefined;
      const cacheLookup = cache ? registerCacheMetrics(metrics.registry, cache, semantic) : undefined;
      // Rate limits count in Redis when there is one (every instance in the same windows), else here.
      // Their store out of reach: admitted unlimited (see RateLimiter), said once a minute.
      const limitStoreFailed = throttledWarning(
        logger,
        'limits and budgets not enforced: their store failed',
        60_000,
      ).bind(undefined, { store: redis ? 'redis' : 'memory' });
      const sharedWindows = redis ? new RedisRateLimitStore(redis, redisKeys) : undefined;
      // Budget alerts also go, signed, to the operator's endpoint when one is configured.
      alertHooks =
        config.webhooks?.alert_url === undefined
          ? undefined
          : new WebhookSender({
              secret: config.webhooks.secret,
              retryScheduleS: config.webhooks.retry_schedule_s,
              // The operator wrote alert_url: its host is trusted (as allowlisted), for alerts only.
              policy: operatorEndpointPolicy(config.webhooks.alert_url, {
                allowlist: config.webhooks.allowlist,
              }),
              onFailure: (failure) =>
                logger.warn(
                  {
                    webhookId: failure.id,
                    attempt: failure.attempt,
                    err: failure.error,
                    final: failure.final,
                  },
                  'budget alert webhook failed',
                ),
            });
      // Targets' capacity (`limits: { rpm, tpm }`) is counted in the same shared windows.
      const router = new Router(models, {
        ...(sharedWindows ? { sharedCapacity: sharedWindows } : {}),
        // The judge calls a model through the context built below (it exists by the first request).
        complexityClassifiers: gatewayComplexityClassifiers(() => context),
        onSharedCapacityError: throttledWarning(
          logger,
          'target capacity counted per instance: Redis failed',
          60_000,
        ).bind(undefined, { store: 'redis' }),
      });
      const limits = new RequestLimits(
        {
          tiers: config.tiers,
          traffic: config.limits,
          limiter: new RateLimiter(sharedWindows ?? new MemoryRateLimitStore(), {
            onStoreError: limitStoreFailed,
          }),
          slots: redis ? new RedisConcurrencyStore(redis, redisKeys) : new MemoryConcurrencyStore(),
          budgets: new BudgetGuard(redis ? new RedisBudgetStore(redis, redisKeys) : new MemoryBudgetStore(), {
            // A window's counter starts from what the ledger has for the key, or the team's keys.
            seed: (subject, period) => subjectSpentMicros(database, subject, period.startMs, period.endMs),
            onAlert: (alert) => {
              metrics.budgetAlerts.inc({ period: alert.period.kind });
              if (alertHooks !== undefined && config.webhooks?.alert_url !== undefined) {
                void alertHooks.send(config.webhooks.alert_url, {
                  type: 'budget.alert',
                  data: {
                    subject: alert.subject,
                    window: alert.period.id,
                    spent_usd: alert.spentMicros / 1_000_000,
                    budget_usd: alert.period.limitMicros / 1_000_000,
                    fraction: Math.round(alert.fraction * 1000) / 1000,
                  },
                });
              }
              logger.warn(
                {
                  subject: alert.subject,
                  window: alert.period.id,
                  spentUsd: alert.spentMicros / 1_000_000,
                  budgetUsd: alert.period.limitMicros / 1_000_000,
                },
                'budget alert: 80% of a budget window is spent',
              );
            },
            onStoreError: limitStoreFailed,
          }),
          pricer,
          onStoreError: limitStoreFailed,
          endUserHeader: config.server.end_user_header,
        },
        (id) => keys.team(id),
      );
      queue = createJobQueue(config, {
        database,
        redisKeys,
        onError: throttledWarning(logger, 'job queue: its store failed; workers keep trying', 60_000).bind(
          undefined,
          { backend: config.jobs.backend },
        ),
      });
      const webhookDelivery = config.webhooks === undefined ? undefined : jobWebhooks(config.webhooks);
      const embedders = new Map<string, Embedder>([['lexical', new LexicalEmbedder()]]);
      const state: GatewayState = { draining: false, startedAt: Date.now() };
      // Checks run in the background; the /health endpoints serve their last results.
      const health = new HealthChecker({ timeoutMs: config.health.timeout_ms });
      const stopSystemChecks = registerSystemChecks(health, { dataDir: config.data_dir, loopDelay: sampler });
      const context: GatewayContext = {
        config,
        logger,
        metrics,
        tracing,
        keys,
        keySync,
        ledger,
        pricer,
        providers,
        models,
        router,
        resilience,
        database,
        redis,
        limits,
        webhooks: alertHooks,
        jobs: createJobServices(queue, database, config.jobs),
        webhookDelivery,
        cache,
        semantic,
        cacheInvalidations: invalidations,
        embedderFor: (name) => {
          let embedder = embedders.get(name);
          if (embedder === undefined) {
            // Config validation has checked the name is a model of this gateway.
            embedder = new ServedEmbedder(context, models.get(name)!);
            embedders.set(name, embedder);
          }
          return embedder;
        },
        observeCacheLookup: cacheLookup ? (seconds) => cacheLookup.observe({}, seconds) : () => {},
        embeddingBatches: [...models.values()].some((m) => m.config.batching.enabled)
          ? new EmbeddingBatches({ resilience, observer: router, registry: metrics.registry })
          : undefined,
        health,
        audit: new AuditLog(database, logger),
        state,
      };
      const jobs = context.jobs;
      registerDependencyChecks(health, {
        database,
        redis,
        providers,
        resilience,
        metrics,
        jobs,
        probeTimeoutMs: config.health.timeout_ms,
        probeIntervalMs: config.health.provider_probe_interval_ms,
      });
      registerHealthMetrics(metrics.registry, health, redis);
      const app = buildApp(context);
      await app.ready();
      const workQueues = options.workQueues ?? (config.jobs.workers ? QUEUE_NAMES : false);
      const worker =
        workQueues === false || workQueues.length === 0
          ? undefined
          : startJobWorker(context, app, workQueues);
      const gateway = new Gateway(context, app, masterKey, worker);
      gateway.#stopSystemChecks = () => {
        stopSystemChecks();
        sampler.stop();
      };
      gateway.#warmup = await startWarmup(context, options.warmupRequests ?? true);
      void health.start(config.health.interval_ms);
      return gateway;
    } catch (error) {
      loopDelay?.stop();
      await queue?.close().catch(() => undefined);
      await tracing?.shutdown();
      alertHooks?.close();
      await resilience?.close().catch(() => undefined);
      await invalidations?.close().catch(() => undefined);
      await cache?.close().catch(() => undefined);
      await semantic?.close().catch(() => undefined);
      redis?.disconnect();
      await database.close().catch(() => undefined);
      throw error;
    }
  }

  /** Starts listening; resolves with the bound address. */
  async listen(
    host = this.context.config.server.host,
    port = this.context.config.server.port,
  ): Promise<AddressInfo> {
    const metricsPort = this.context.config.server.metrics_port;
    if (metricsPort !== undefined && this.metricsServer === undefined) {
      this.metricsServer = await startMetricsServer(this.context.metrics, host, metricsPort);
    }
    await this.app.listen({ host, port });
    return this.app.server.address() as AddressInfo;
  }

  /** Graceful stop; idempotent. */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    const { state, logger, config, ledger, keySync, redis, providers, database, cache, semantic } =
      this.context;
    // Workers stop taking jobs at once; the running ones finish (their requests
    // still pass the draining app) or are taken up again by another worker.
    const workerDone = this.worker?.close(config.server.shutdown.grace_ms);
    state.draining = true;
    this.context.health.stop();
    this.#stopSystemChecks();
    // Embeddings waiting for company leave now: their requests are in flight.
    this.context.embeddingBatches?.flush();
    this.#warmup?.connections?.close();
    this.#warmup?.requests.abort();
    logger.info('shutting down: draining in-flight requests');
    const server = this.app.server;
    // Keep-alive sockets that go idle while we drain are closed as they free up.
    const reaper = setInterval(() => server.closeIdleConnections(), 50);
    const deadline = setTimeout(() => {
      logger.warn('shutdown grace period over: closing remaining connections');
      server.closeAllConnections();
    }, config.server.shutdown.grace_ms);
    try {
      // Before the app closes: a running job's requests go through it.
      await workerDone;
      await this.app.close();
    } finally {
      clearInterval(reaper);
      clearTimeout(deadline);
    }
    await this.metricsServer?.close();
    await this.context.jobs.queue.close();
    await this.context.webhookDelivery?.close();
    await ledger.close();
    // Cache writes still in flight (the SQL tier's) finish before their connections close.
    await this.context.cacheInvalidations?.close();
    await cache?.close();
    await semantic?.close();
    await keySync.close();
    await this.context.resilience.close();
    this.context.webhooks?.close();
    await Promise.all([...providers.values()].map((p) => p.close().catch(() => undefined)));
    if (redis) await redis.quit().catch(() => redis.disconnect());
    await database.close();
    // Last: the spans of requests that finished while draining are exported too.
    await this.context.tracing.shutdown();
    logger.info({ ledger: ledger.stats }, 'stopped');
    await flushLogger(logger);
  }
}
