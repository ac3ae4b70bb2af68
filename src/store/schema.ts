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

export interface Schema {
  virtual_keys: VirtualKeysTable;
  teams: TeamsTable;
  usage_ledger: UsageLedgerTable;
  response_cache: ResponseCacheTable;
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
