/**
 * Table types for Kysely. The same shapes hold on SQLite and PostgreSQL:
 * JSON is stored as text, booleans as 0/1 integers, times as epoch
 * milliseconds (bigint on PostgreSQL, parsed back to JS numbers by the pool).
 */
import type { UsageSource } from '../core/types.ts';

export interface VirtualKeysTable {
  id: string;
  name: string;
  /** Hex SHA-256 of the secret; the secret itself is never stored. */
  key_hash: string;
  /** Last 4 characters of the secret, for display only. */
  key_hint: string;
  tier: string | null;
  /** JSON array of model names; null or `[]` means every model. */
  allowed_models: string | null;
  /** JSON object. */
  metadata: string;
  expires_at: number | null;
  created_at: number;
  revoked_at: number | null;
  /** JSON limits object (config/limits-schema.ts) over the tier's; null: the tier's alone. */
  limits: string | null;
  /** JSON budget object (config/limits-schema.ts); null: no caps. */
  budget: string | null;
  /** The team the key belongs to, if any. */
  team_id: string | null;
}

/** A team: keys that share a tier, limits and a budget, counted together. */
export interface TeamsTable {
  id: string;
  name: string;
  tier: string | null;
  /** JSON limits object over the tier's; null: the tier's alone. */
  limits: string | null;
  /** JSON budget object; null: none. */
  budget: string | null;
  created_at: number;
}

/** `hedge_lost`: a hedged attempt that another attempt beat; aborted, still billed. */
export type LedgerStatus = 'ok' | 'error' | 'client_closed' | 'timeout' | 'hedge_lost';
export type { UsageSource };
/** What the response cache did: `semantic-hit` served a near prompt's answer. */
export type CacheStatus = 'miss' | 'hit' | 'semantic-hit' | 'bypass';

export interface UsageLedgerTable {
  /** The gateway's own id of the request: unique, whatever the client sent. */
  request_id: string;
  attempt: number;
  /** The client's `x-request-id`, when it sent one (for correlation only). */
  client_request_id: string | null;
  key_id: string | null;
  route: string;
  model_requested: string;
  provider: string | null;
  model_used: string | null;
  status: LedgerStatus;
  http_status: number;
  error_code: string | null;
  /** 0 or 1. */
  stream: number;
  prompt_tokens: number;
  completion_tokens: number;
  cached_tokens: number;
  reasoning_tokens: number;
  usage_source: UsageSource;
  latency_ms: number;
  ttft_ms: number | null;
  cache_status: CacheStatus;
  /** Micro-dollars; null while the model's price is unknown. */
  cost_micros: number | null;
  created_at: number;
}

/** The response cache's L3 tier (src/cache/sql-cache-store.ts). */
export interface ResponseCacheTable {
  /** `cacheKeyString(key)`: model and scope URI-encoded, then the request hash. */
  key: string;
  model: string;
  scope: string;
  /** The cached answer as JSON text. */
  body: string;
  stored_at: number;
  /** When this tier stops serving the row (the entry's own expiry, capped by `cache.sql.ttl_s`). */
  expires_at: number;
  prompt_tokens: number;
  completion_tokens: number;
  /** What computing the answer cost upstream, in micro-dollars; null when unknown. */
  cost_micros: number | null;
}

/**
 * An uploaded file (`POST /v1/files`; batch input) or one the gateway wrote (a
 * batch's output and error files). Its bytes are in `file_chunks`; a file is
 * served only once `status` is `processed` (an upload cut short leaves none).
 */
export interface FilesTable {
  id: string;
  /** The key that uploaded it (or whose batch wrote it); only that key sees it. */
  key_id: string;
  /** `batch` (input) or `batch_output`. */
  purpose: string;
  filename: string;
  bytes: number;
  /** Lines of a JSONL file. */
  lines: number;
  /** `uploading` while its chunks are written, then `processed`. */
  status: string;
  created_at: number;
  expires_at: number | null;
}

/** A file's bytes, in order: whole lines (UTF-8 text), about 1 MB each, so a file streams without being held whole. */
export interface FileChunksTable {
  file_id: string;
  seq: number;
  data: string;
}

/** An OpenAI batch (`POST /v1/batches`). Times are epoch ms (the wire says seconds). */
export interface BatchesTable {
  id: string;
  key_id: string;
  endpoint: string;
  input_file_id: string;
  completion_window: string;
  /** validating | failed | in_progress | finalizing | completed | expired | cancelling | cancelled */
  status: string;
  output_file_id: string | null;
  error_file_id: string | null;
  /** JSON: OpenAI's `errors` object, when validation failed. */
  errors: string | null;
  /** JSON object, or null. */
  metadata: string | null;
  total: number;
  completed: number;
  failed: number;
  created_at: number;
  in_progress_at: number | null;
  finalizing_at: number | null;
  completed_at: number | null;
  failed_at: number | null;
  expires_at: number;
  expired_at: number | null;
  cancelling_at: number | null;
  cancelled_at: number | null;
}

/**
 * One processed line of a batch, kept by its line number: a worker killed
 * mid-batch and run again skips the lines that are here, and the primary key
 * makes a line's result land once, whatever ran it twice.
 */
export interface BatchLinesTable {
  batch_id: string;
  line: number;
  /** 1: goes to the output file; 0: to the error file. */
  ok: number;
  /** The output (or error) file's JSON line for it. */
  output: string;
}

/** `JobStatus` of src/jobs/job-queue.ts (the store cannot import the layer above it). */
export type JobRowStatus = 'queued' | 'active' | 'completed' | 'failed' | 'cancelled';

/** One job of the SQL job queue (src/jobs/sql-job-queue.ts). */
export interface JobsTable {
  id: string;
  queue: string;
  status: JobRowStatus;
  /** Higher runs first. */
  priority: number;
  /** Add order within a priority: the add time in µs, strictly increasing per process. */
  seq: number;
  /** JSON. */
  payload: string;
  /** JSON the handler returned, once completed. */
  result: string | null;
  /** The last failure's message. */
  error: string | null;
  /** JSON the handler last reported. */
  progress: string | null;
  /** Attempts started (a claim counts one). */
  attempts: number;
  max_attempts: number;
  backoff_ms: number;
  /** A queued job is not claimed before this (a retry's backoff). */
  run_at: number;
  /** An active job's lease: past this, its worker is taken for dead and any worker may take the job. */
  locked_until: number | null;
  /** The claim holding the lease; a finish or heartbeat that does not match it changes nothing. */
  lock_token: string | null;
  /** 0 or 1: cancel was asked while active; the worker sees it on its next heartbeat. */
  cancel_requested: number;
  created_at: number;
  started_at: number | null;
  finished_at: number | null;
}

/** One admin action (migration 0012_audit_log); `details` is JSON (what changed, never a secret). */
export interface AuditLogTable {
  id: string;
  at: number;
  actor: string;
  action: string;
  target_type: string;
  target_id: string | null;
  details: string;
  request_id: string | null;
}

/**
 * A stored Responses API response (`POST /v1/responses` with `store` on), for
 * `GET /v1/responses/{id}`, its input items and `previous_response_id`.
 * Items are JSON arrays in the Responses API's item shapes (provider-neutral).
 */
export interface ResponsesTable {
  id: string;
  /** The key that created it; only that key sees it. */
  key_id: string;
  /** The response it continued, whose chain is its history. */
  previous_response_id: string | null;
  /** The model name the client asked for. */
  model: string;
  /** JSON: this request's own input items. */
  input_items: string;
  /** JSON: the items the model produced. */
  output_items: string;
  /** JSON: the Response object as the client got it. */
  response: string;
  created_at: number;
  /** Epoch ms past which it is gone (`responses.retention_days` after its chain was last continued). */
  expires_at: number;
}

export interface Schema {
  responses: ResponsesTable;
  audit_log: AuditLogTable;
  virtual_keys: VirtualKeysTable;
  teams: TeamsTable;
  usage_ledger: UsageLedgerTable;
  response_cache: ResponseCacheTable;
  jobs: JobsTable;
  files: FilesTable;
  file_chunks: FileChunksTable;
  batches: BatchesTable;
  batch_lines: BatchLinesTable;
}

/**
 * PostgreSQL rejects NUL (`\u0000`) in text values, so a prompt-derived string
 * containing one would fail the whole insert. Strip it in every write path so
 * both dialects store the same thing and no row is lost.
 */
export function stripNul(value: string): string {
  return value.includes('\u0000') ? value.replaceAll('\u0000', '') : value;
}

export function stripNulOrNull(value: string | null): string | null {
  return value === null ? null : stripNul(value);
}
