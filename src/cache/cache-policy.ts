/**
 * What may be cached and for how long, and what a request asks of the cache.
 *
 * Per request: `Cache-Control: no-cache` asks for a fresh answer (no lookup;
 * the answer is stored for the next one), `no-store` keeps the exchange out of
 * the cache altogether, and `x-switchyard-cache-ttl: <seconds>` sets the
 * lifetime of the answer it stores.
 *
 * An answer is stored only when it is whole and usable: every choice ended by
 * itself (`stop`) or with tool calls, no refusal. Errors never reach here;
 * truncated (`length`), content-filtered and refused answers are not stored,
 * nor an Anthropic message cut at `max_tokens` or refused.
 */
import { GatewayError } from '../core/errors.ts';
import type { ChatCompletion } from '../core/types.ts';

export const CACHE_TTL_HEADER = 'x-switchyard-cache-ttl';
/** The longest lifetime a request may ask for: 30 days. */
export const MAX_TTL_S = 30 * 24 * 3600;
/** Token-aware lifetimes grow with what the answer cost, up to this many times the model's `ttl_s`. */
export const MAX_TTL_FACTOR = 4;

export interface CacheDirectives {
  /** Look up a cached answer. */
  lookup: boolean;
  /** Store this request's answer. */
  store: boolean;
  /** The lifetime the request asked for, in seconds. */
  ttlS: number | undefined;
}

export function cacheDirectives(headers: Record<string, string | string[] | undefined>): CacheDirectives {
  const control = String(headers['cache-control'] ?? '').toLowerCase();
  const tokens = new Set(control.split(',').map((t) => t.trim().split('=')[0]));
  const noStore = tokens.has('no-store');
  const ttlHeader = headers[CACHE_TTL_HEADER];
  let ttlS: number | undefined;
  if (ttlHeader !== undefined) {
    const text = String(ttlHeader).trim();
    const value = /^\d{1,10}$/.test(text) ? Number(text) : Number.NaN;
    if (!(value >= 1 && value <= MAX_TTL_S)) {
      throw new GatewayError(
        'invalid_request',
        `${CACHE_TTL_HEADER} must be a whole number of seconds from 1 to ${MAX_TTL_S}`,
        { param: CACHE_TTL_HEADER },
      );
    }
    ttlS = value;
  }
  return { lookup: !noStore && !tokens.has('no-cache'), store: !noStore, ttlS };
}

/** A chat answer worth serving again: whole, not refused, not filtered. */
export function isCacheableCompletion(completion: ChatCompletion): boolean {
  if (completion.choices.length === 0) return false;
  return completion.choices.every(
    (choice) =>
      (choice.finish_reason === 'stop' || choice.finish_reason === 'tool_calls') &&
      (choice.message.refusal === undefined || choice.message.refusal === null),
  );
}

/** An Anthropic message worth serving again: ended by itself or with tool use. */
export function isCacheableMessage(message: { stop_reason?: unknown }): boolean {
  return (
    message.stop_reason === 'end_turn' ||
    message.stop_reason === 'stop_sequence' ||
    message.stop_reason === 'tool_use'
  );
}

/**
 * An answer's lifetime in ms: what the request asked for, else the model's
 * `ttl_s` stretched by what the answer cost to produce (1× plus 1× per 1,000
 * completion tokens, at most MAX_TTL_FACTOR×): long answers are the ones worth keeping.
 */
export function cacheTtlMs(modelTtlS: number, asked: number | undefined, completionTokens: number): number {
  if (asked !== undefined) return asked * 1000;
  const factor = Math.min(MAX_TTL_FACTOR, 1 + completionTokens / 1000);
  return Math.round(modelTtlS * factor * 1000);
}
