/**
 * A ledger row as the database stores it. Values are normalised on the way
 * in, so one malformed row can never make a whole batch fail forever.
 */
import { stripNul, stripNulOrNull } from '../store/schema.ts';
import type { LedgerDbRow } from './ledger-sink.ts';
import type { LedgerRow } from './usage-ledger.ts';

// Values are normalised here, on the way in, so one malformed row can never
// make a whole batch fail forever (e.g. NaN into an integer column, NUL into
// PostgreSQL text).
export function toDbRow(row: LedgerRow): LedgerDbRow {
  return {
    request_id: stripNul(String(row.requestId)),
    attempt: toInt32(row.attempt),
    client_request_id: stripNulOrNull(row.clientRequestId ?? null),
    key_id: stripNulOrNull(row.keyId ?? null),
    route: stripNul(String(row.route)),
    model_requested: stripNul(String(row.modelRequested)),
    provider: stripNulOrNull(row.provider ?? null),
    model_used: stripNulOrNull(row.modelUsed ?? null),
    status: row.status ?? 'error',
    http_status: toInt32(row.httpStatus),
    error_code: stripNulOrNull(row.errorCode ?? null),
    stream: row.stream ? 1 : 0,
    prompt_tokens: toInt(row.promptTokens),
    completion_tokens: toInt(row.completionTokens),
    cached_tokens: toInt(row.cachedTokens),
    reasoning_tokens: toInt(row.reasoningTokens),
    usage_source: row.usageSource ?? 'none',
    latency_ms: toFloat(row.latencyMs),
    ttft_ms: row.ttftMs === null || row.ttftMs === undefined ? null : toFloat(row.ttftMs),
    cache_status: row.cacheStatus ?? 'bypass',
    cost_micros: row.costMicros === null || row.costMicros === undefined ? null : toInt(row.costMicros),
    created_at: toInt(row.createdAt),
  };
}

// Counters and times are 64-bit columns but must stay exact as JS numbers.
function toInt(value: number): number {
  return clampInt(value, Number.MAX_SAFE_INTEGER);
}

// attempt and http_status are 32-bit `integer` columns on PostgreSQL.
function toInt32(value: number): number {
  return clampInt(value, 2_147_483_647);
}

function clampInt(value: number, limit: number): number {
  const n = Math.trunc(Number(value));
  return Number.isFinite(n) ? Math.max(-limit, Math.min(limit, n)) : 0;
}

function toFloat(value: number): number {
  const n = Number(value);
  return Number.isFinite(n) ? n : 0;
}
