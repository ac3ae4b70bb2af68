/**
 * One policy for every adapter: what an upstream's failed answer means for the
 * client and for the routing layer.
 *
 * Each adapter only parses its provider's error body into `UpstreamErrorFacts`
 * (the message, plus signals its body carries that the HTTP status does not,
 * such as Gemini's RESOURCE_EXHAUSTED or API_KEY_INVALID); this module decides
 * the GatewayError. The rules, in order:
 * - a redirect is a bad response (redirects are never followed: they could
 *   carry our credentials elsewhere);
 * - 401/403 (or the provider saying the key is bad) means *our* provider
 *   credentials failed: 502 with a generic message (the client's request was
 *   fine, and the upstream's text may quote our key);
 * - 429 is retryable and keeps the upstream's wait; 408/504 are timeouts;
 *   503 and Anthropic's 529 are overload (retryable, wait kept); other 5xx are
 *   upstream errors (retryable);
 * - the caller's own 4xx are final and keep their status; 413 and a prompt over
 *   the context window get their own codes.
 */
import { GatewayError } from '../core/errors.ts';
import { parseRetryAfter } from '../util/retry-after.ts';

export type UpstreamHeaders = Record<string, string | string[] | undefined>;

export interface UpstreamErrorFacts {
  /** The HTTP status (for an error inside a 200 stream: the status its type stands for). */
  status: number;
  /** Already redacted (no provider key), or the generic text when the body had none. */
  message: string;
  headers?: UpstreamHeaders;
  /** Set when the answer came with an HTTP status (not a mid-stream error). */
  upstreamStatus?: number;
  param?: string;
  /** The provider's own wait when no Retry-After header says it (Gemini's RetryInfo). */
  retryDelayMs?: number;
  /** Signals beyond the status code. */
  authFailure?: boolean;
  rateLimited?: boolean;
  overloaded?: boolean;
  timedOut?: boolean;
  contextLength?: boolean;
}

export function classifyUpstreamError(facts: UpstreamErrorFacts): GatewayError {
  const { status, message } = facts;
  const options = {
    ...(facts.upstreamStatus !== undefined ? { upstreamStatus: facts.upstreamStatus } : {}),
    ...(facts.param !== undefined ? { param: facts.param } : {}),
  };
  const waited = (): { retryAfterMs?: number } => {
    const retryAfterMs = parseRetryAfter(facts.headers ?? {}) ?? facts.retryDelayMs;
    return retryAfterMs !== undefined ? { retryAfterMs } : {};
  };
  if (status >= 300 && status < 400) {
    return new GatewayError(
      'upstream_bad_response',
      'Upstream answered with a redirect; redirects are not followed',
      options,
    );
  }
  if (status === 401 || status === 403 || facts.authFailure) {
    return new GatewayError(
      'upstream_auth_error',
      'The upstream provider rejected the gateway credentials',
      options,
    );
  }
  if (status === 429 || facts.rateLimited) {
    return new GatewayError('upstream_rate_limited', message, { ...options, ...waited() });
  }
  if (status === 408 || status === 504 || facts.timedOut) {
    return new GatewayError('upstream_timeout', message, options);
  }
  if (status === 503 || status === 529 || facts.overloaded) {
    return new GatewayError('upstream_overloaded', message, { ...options, ...waited() });
  }
  if (status >= 500) return new GatewayError('upstream_error', message, options);
  if (status === 413) return new GatewayError('request_too_large', message, options);
  if (facts.contextLength) return new GatewayError('context_length_exceeded', message, options);
  return new GatewayError('upstream_client_error', message, {
    ...options,
    status: status >= 400 ? status : 502,
  });
}

/** Upstream messages sometimes quote the key they rejected: never relay it. */
export function keyRedactor(key: string | undefined): (text: string) => string {
  return key && key.length >= 8 ? (text) => text.split(key).join('[redacted]') : (text) => text;
}
