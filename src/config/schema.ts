/**
 * The configuration schema: the single source of truth for what `switchyard.yaml`
 * may contain, its defaults, and the messages users see when it is wrong.
 *
 * Objects are strict: an unknown key is an error, because a typo such as
 * `retires:` silently ignored is worse than a refusal to start.
 */
import { z } from 'zod';
import { dashboardSchema } from './dashboard-schema.ts';
import { jobsSchema } from './jobs-schema.ts';
import { limitsSchema, tiersSchema } from './limits-schema.ts';
import { PRESET_TYPES, PRESETS } from './presets.ts';
import { DEFAULT_REDIS_PREFIX, isValidRedisPrefix, REDIS_PREFIX_RULE } from './redis-prefix.ts';
import { redisClusterSchema, redisSentinelSchema } from './redis-topology-schema.ts';
import { circuitBreakerSchema, hedgingSchema, resilienceSchema, retriesSchema } from './resilience-schema.ts';
import { routingModelFields, targetSchema } from './routing-schema.ts';
import { warmupSchema } from './warmup-schema.ts';
import { isWebhookAllowlistEntry, WEBHOOK_ALLOWLIST_RULE } from './webhook-allowlist.ts';

const positiveMs = (what: string) =>
  z
    // A schema-level message would also replace the checks' own; scope it to type errors.
    .number({
      error: (issue) =>
        issue.code === 'invalid_type' ? `expected a number of milliseconds for ${what}` : undefined,
    })
    .int({ error: `expected whole milliseconds for ${what}` })
    .positive({ error: `expected a positive number of milliseconds for ${what}` });

const url = z.url({ protocol: /^https?$/, error: 'expected a URL' });

export const timeoutsSchema = z.strictObject({
  connect_ms: positiveMs('connect_ms').default(2_000),
  first_byte_ms: positiveMs('first_byte_ms').default(15_000),
  total_ms: positiveMs('total_ms').default(300_000),
  idle_ms: positiveMs('idle_ms').default(60_000),
});

const mockProviderSchema = z.strictObject({
  type: z.literal('mock'),
  /** Delay before a non-streaming answer or before the first stream chunk. */
  latency_ms: z.number().int().min(0).default(0),
  /** Delay between two stream chunks. */
  stream_delay_ms: z.number().int().min(0).default(0),
  /** Canned reply; by default the mock echoes the last user message. */
  reply: z.string().optional(),
});

const apiKey = z.string().min(1, { error: 'expected a non-empty API key' });
/** Model ids and deployment names go into URL paths: no `/`, `?`, `#`, `%` or `@` may smuggle in another path or host. */
const pathSegment = z.string().regex(/^[A-Za-z0-9._:-]+$/, {
  error: 'expected letters, digits, ".", "_", ":" or "-" only',
});

/** What every HTTP provider takes, whatever its API. */
const upstreamFields = {
  /** Extra headers sent on every upstream request (a proxy's, `anthropic-beta`...). */
  headers: z.record(z.string(), z.string()).default({}),
  /** Upper bound on pooled connections to this upstream. */
  max_connections: z.number().int().positive().default(256),
};

const openAIProviderSchema = z.strictObject({
  type: z.literal('openai'),
  api_key: apiKey.optional(),
  base_url: url.default('https://api.openai.com/v1'),
  organization: z.string().optional(),
  ...upstreamFields,
});

const anthropicProviderSchema = z.strictObject({
  type: z.literal('anthropic'),
  api_key: apiKey.optional(),
  /** Without `/v1`, as in Anthropic's SDKs. */
  base_url: url.default('https://api.anthropic.com'),
  anthropic_version: z.string().min(1).default('2023-06-01'),
  ...upstreamFields,
  /** Anthropic requires `max_tokens`; sent when the client gives none. */
  default_max_tokens: z.number().int().positive().default(4096),
});

const geminiProviderSchema = z.strictObject({
  type: z.literal('gemini'),
  api_key: apiKey,
  base_url: url.default('https://generativelanguage.googleapis.com'),
  ...upstreamFields,
});

const azureProviderSchema = z.strictObject({
  type: z.literal('azure'),
  /** `https://{resource}.openai.azure.com` */
  endpoint: url,
  api_key: apiKey,
  api_version: z
    .string()
    .regex(/^[0-9a-z.-]+$/, { error: 'expected an API version such as 2024-10-21' })
    .default('2024-10-21'),
  /** Model id → deployment name; a model not listed uses its own id as the deployment name. */
  deployments: z.record(z.string(), pathSegment).default({}),
  ...upstreamFields,
});

/** One schema per OpenAI-compatible preset (src/providers/presets.ts): only the defaults differ. */
const presetProviderSchemas = PRESET_TYPES.map((type) =>
  z.strictObject({
    type: z.literal(type),
    api_key: PRESETS[type].requiresKey ? apiKey : apiKey.optional(),
    base_url: url.default(PRESETS[type].baseUrl),
    ...upstreamFields,
  }),
);

const PROVIDER_TYPES = ['openai', 'anthropic', 'mock', 'gemini', 'azure', ...PRESET_TYPES].join(', ');

export const providerSchema = z.discriminatedUnion(
  'type',
  [
    openAIProviderSchema,
    anthropicProviderSchema,
    mockProviderSchema,
    geminiProviderSchema,
    azureProviderSchema,
    ...presetProviderSchemas,
  ],
  {
    error: (issue) =>
      issue.code === 'invalid_union'
        ? `expected type to be one of: ${PROVIDER_TYPES}`
        : 'expected a provider object',
  },
);

export { targetSchema } from './routing-schema.ts';

const usdPerMTok = z.number({ error: 'expected a price in USD per million tokens' }).min(0).max(10_000);

const modelCacheSchema = z.strictObject({
  enabled: z.boolean().default(false),
  /** Lifetime of a stored answer, stretched for costly answers (src/cache/cache-policy.ts). */
  ttl_s: z.number().int().positive().default(3600),
  /** Who may be served a stored answer: the key that asked (default), its team, or everyone. */
  scope: z.enum(['key', 'team', 'global']).default('key'),
  /** A prompt near an earlier one (same model, scope and everything else) is served its answer (README "Semantic cache"). */
  semantic: z
    .strictObject({
      enabled: z.boolean().default(false),
      /** Cosine similarity at or above which a prompt counts as the same question. */
      threshold: z.number().gt(0).max(1).default(0.95),
      /** `lexical` (built in, offline) or the name of an embeddings model this gateway serves. */
      embedder: z.string().min(1).max(200).default('lexical'),
      /** Conversations with more user turns than this are only cached exactly. */
      max_turns: z.number().int().min(1).max(100).default(3),
      /** Whether requests that offer tools are compared too (a near prompt may call for another call). */
      tools: z.boolean().default(false),
    })
    .prefault({}),
});

/**
 * Embedding micro-batching (README "Embedding batching"): concurrent
 * single-input `/v1/embeddings` calls to the model share upstream calls. Off
 * by default: a lone request would wait `max_wait_ms` for company.
 */
const modelBatchingSchema = z.strictObject({
  enabled: z.boolean().default(false),
  /** Most inputs per upstream call (OpenAI takes up to 2,048). */
  max_batch: z.number().int().min(1).max(2_048).default(100),
  /** Longest the first request of a batch waits for others. */
  max_wait_ms: z.number().int().min(0).max(60_000).default(10),
  /** Most upstream calls in flight per batch key; later batches wait and keep filling. */
  max_in_flight: z.number().int().min(1).max(1_000).default(8),
});

export const modelSchema = z.strictObject({
  strategy: z.enum(['fallback', 'weighted', 'least-latency', 'cost', 'complexity']).default('fallback'),
  timeouts: timeoutsSchema.prefault({}),
  retries: retriesSchema.prefault({}),
  circuit_breaker: circuitBreakerSchema.prefault({}),
  hedging: hedgingSchema.prefault({}),
  cache: modelCacheSchema.prefault({}),
  batching: modelBatchingSchema.prefault({}),
  targets: z.array(targetSchema).min(1, { error: 'expected at least one target' }),
  ...routingModelFields,
});

export const configSchema = z.strictObject({
  server: z
    .strictObject({
      /** Loopback by default: exposing the gateway is a deliberate choice. */
      host: z.string().default('127.0.0.1'),
      port: z.number().int().min(0).max(65_535).default(8080),
      /** Largest request body accepted, in bytes (413 beyond). */
      body_limit_bytes: z
        .number()
        .int()
        .positive()
        .default(10 * 1024 * 1024),
      /** SSE comment sent when a stream has been silent this long, so proxies keep it open. */
      heartbeat_ms: positiveMs('heartbeat_ms').default(15_000),
      /** A request header naming the end user (per_user limits), over the body's `user` field; e.g. x-end-user. */
      end_user_header: z
        .string()
        .regex(/^[a-z0-9-]{1,100}$/, { error: 'expected a lower-case header name' })
        .optional(),
      /** Node's headersTimeout: closes slow-header (slowloris) sockets. */
      headers_timeout_ms: positiveMs('headers_timeout_ms').default(20_000),
      /** Serve /metrics on this port (same host) instead of the main one; unset: on the main port. */
      metrics_port: z.number().int().min(0).max(65_535).optional(),
      shutdown: z
        .strictObject({
          /** Longest wait for in-flight requests and streams after SIGTERM. */
          grace_ms: positiveMs('grace_ms').default(30_000),
        })
        .prefault({}),
    })
    .prefault({}),
  master_key: z.string().min(16, { error: 'expected at least 16 characters' }).optional(),
  data_dir: z.string().default('./data'),
  storage: z
    .strictObject({
      database_url: z.string().min(1).optional(),
      replica_urls: z.array(z.string()).default([]),
      /** Connections in the primary's PostgreSQL pool, and in each replica's. */
      pool_size: z.number().int().min(1).max(1_000).default(10),
      replica_pool_size: z.number().int().min(1).max(1_000).default(10),
      /**
       * Apply pending schema migrations at start (default). false: never migrate, and refuse
       * to start on a schema older than this version's; `switchyard migrate` applies them
       * (the Kubernetes migration Job). Or SWITCHYARD_MIGRATE=false.
       */
      migrate: z.boolean().default(true),
      redis_url: z
        .string()
        .regex(/^rediss?:\/\//, { error: 'expected a redis:// or rediss:// URL' })
        .optional(),
      /** A primary watched by Sentinel (failover without a config change); instead of redis_url. */
      redis_sentinel: redisSentinelSchema.optional(),
      /** A Redis Cluster (keys spread over its masters); instead of redis_url. */
      redis_cluster: redisClusterSchema.optional(),
      /**
       * Starts every Redis key and channel name (src/store/redis-keys.ts): deployments
       * sharing one Redis stay apart by giving each its own.
       */
      redis_prefix: z
        .string()
        .refine(isValidRedisPrefix, { error: `expected ${REDIS_PREFIX_RULE}` })
        .default(DEFAULT_REDIS_PREFIX),
    })
    .prefault({}),
  logging: z
    .strictObject({
      level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
      /** Share of successful request lines written (errors and audit lines always are). */
      sample_rate: z.number().min(0).max(1).default(1),
    })
    .prefault({}),
  /** Background health checks (src/observability/health-checker.ts): the endpoints serve their last results. */
  health: z
    .strictObject({
      interval_ms: positiveMs('interval_ms').default(10_000),
      /** A check slower than this is unhealthy (a hung provider or database). */
      timeout_ms: positiveMs('timeout_ms').default(5_000),
      /**
       * How often each provider is probed with an unbilled call (listing models), the first time
       * this long after start; 0: never (live traffic and breakers alone judge providers).
       */
      provider_probe_interval_ms: z.number().int().min(0).default(60_000),
    })
    .prefault({}),
  /**
   * OpenTelemetry traces: on when OTEL_EXPORTER_OTLP_ENDPOINT (or _TRACES_ENDPOINT)
   * is set, configured by the standard OTEL_* variables (src/observability/tracing.ts).
   */
  tracing: z
    .strictObject({
      /** Prompt text on spans (`gen_ai.input.messages`): off, prompts are the clients' data. */
      capture_content: z.boolean().default(false),
    })
    .prefault({}),
  ledger: z
    .strictObject({
      flush_interval_ms: positiveMs('flush_interval_ms').default(200),
      max_batch: z.number().int().positive().default(500),
      /** Rows go to `<data_dir>/ledger-spool/` before the answer completes, so kill -9 loses no usage. */
      spool: z.boolean().default(true),
    })
    .prefault({}),
  /** Shared response-cache settings; each model switches caching on under `models.<name>.cache`. */
  cache: z
    .strictObject({
      /** L1: the in-process LRU's bound. L2 is Redis whenever `storage.redis_url` is set. */
      memory_mb: z.number().min(0).default(256),
      /** L3, opt-in: answers in the SQL database, kept across restarts (src/cache/sql-cache-store.ts). */
      sql: z
        .strictObject({
          enabled: z.boolean().default(false),
          /** The longest the SQL tier keeps an answer; never longer than the answer's own lifetime. */
          ttl_s: z.number().int().positive().default(604_800),
        })
        .prefault({}),
    })
    .prefault({}),
  resilience: resilienceSchema.prefault({}),
  /** Signed webhooks (Standard Webhooks; src/webhooks/): where alerts go, and how deliveries are retried. */
  webhooks: z
    .strictObject({
      secret: z
        .string()
        .regex(/^whsec_[A-Za-z0-9+/]+={0,2}$/, { error: 'expected whsec_ followed by base64' }),
      retry_schedule_s: z
        .array(z.number().int().positive().max(86_400))
        .max(20)
        .default([5, 300, 1800, 7200]),
      /** Where budget alerts are sent (the operator's endpoint; its host is trusted as if allowlisted, for alerts only). */
      alert_url: url.optional(),
      /**
       * Hosts (`hooks.internal`, `*.corp.example`), addresses and CIDR blocks a
       * webhook may reach even though they are private, loopback or link-local
       * (src/webhooks/webhook-url-policy.ts). Empty: public addresses only.
       */
      allowlist: z
        .array(z.string().refine(isWebhookAllowlistEntry, { error: WEBHOOK_ALLOWLIST_RULE }))
        .max(1_000)
        .default([]),
    })
    .optional(),
  /** Async jobs, the Files and Batch API, and their workers (src/jobs/). */
  jobs: jobsSchema.prefault({}),
  /** Stored Responses API responses (`POST /v1/responses` with `store`): kept this long after their conversation was last continued. */
  responses: z.strictObject({ retention_days: z.number().int().min(1).max(3_650).default(30) }).prefault({}),
  /** The web dashboard at /dashboard (./dashboard-schema.ts). */
  dashboard: dashboardSchema.prefault({}),
  /** Pre-warming at start: upstream connections, optional warm-up requests (./warmup-schema.ts). */
  warmup: warmupSchema.prefault({}),
  /** Rate limits by tier (src/config/limits-schema.ts); a key's own limits override its tier's. */
  tiers: tiersSchema,
  /**
   * Limits on all traffic, whatever the key (the master key's included):
   * `gateway` on every model request, `models.<name>` on requests for that
   * model (the name clients ask for). Fleet-wide with Redis.
   */
  limits: z
    .strictObject({
      gateway: limitsSchema.optional(),
      models: z.record(z.string().min(1).max(200), limitsSchema).default({}),
    })
    .prefault({}),
  /** USD per million tokens, by upstream model id: overrides and extends the built-in table (src/core/price-table.ts). */
  pricing: z
    .record(
      z.string().min(1).max(200),
      z.strictObject({
        input: usdPerMTok,
        output: usdPerMTok,
        cached_input: usdPerMTok.optional(),
        cache_write: usdPerMTok.optional(),
      }),
    )
    .default({}),
  providers: z.record(z.string().regex(/^[a-zA-Z0-9_-]+$/), providerSchema),
  models: z.record(z.string().min(1).max(200), modelSchema),
});

export type Config = z.output<typeof configSchema>;
export type ProviderConfig = z.output<typeof providerSchema>;
export type ModelConfig = z.output<typeof modelSchema>;
export type TargetConfig = z.output<typeof targetSchema>;
