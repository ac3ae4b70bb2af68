/**
 * Anthropic error responses (`{"type":"error","error":{"type","message"}}`)
 * and `error` stream events → GatewayError.
 *
 * As for OpenAI upstreams: rate limits, overload (529 `overloaded_error`) and
 * 5xx are retryable; the caller's own 4xx are final and keep their status. A
 * 401/403 means *our* credentials are wrong, so the client gets a 502 with a
 * generic message (their request was fine, and the upstream's text may quote
 * our key). A prompt over the context window is `context_length_exceeded`.
 */
import { GatewayError } from '../../core/errors.ts';
import { statusOfErrorType } from '../../protocols/anthropic/anthropic-error-types.ts';
import { parseRetryAfter } from '../../util/retry-after.ts';

type Headers = Record<string, string | string[] | undefined>;

const CONTEXT_LENGTH = /prompt is too long|context (window|length)|too many (input )?tokens/i;

export function mapAnthropicError(
  status: number,
  headers: Headers,
  bodyText: string,
  redact: (text: string) => string,
): GatewayError {
  const parsed = parseAnthropicErrorBody(bodyText);
  const message = redact(parsed.message ?? `Upstream returned HTTP ${status}`);
  return errorForStatus(status, message, headers, { upstreamStatus: status });
}

/**
 * An `error` event after a 200 stream started: the status is gone, so the
 * error type stands for the status Anthropic sends it with, and the same rules apply.
 */
export function mapAnthropicStreamError(data: string, redact: (text: string) => string): GatewayError {
  const parsed = parseAnthropicErrorBody(data);
  const message = redact(parsed.message ?? 'Upstream reported an error mid-stream');
  return errorForStatus(statusOfErrorType(parsed.type), message, {}, {});
}

function errorForStatus(
  status: number,
  message: string,
  headers: Headers,
  options: { upstreamStatus?: number },
): GatewayError {
  if (status >= 300 && status < 400) {
    return new GatewayError(
      'upstream_bad_response',
      'Upstream answered with a redirect; redirects are not followed',
      options,
    );
  }
  if (status === 401 || status === 403) {
    return new GatewayError(
      'upstream_auth_error',
      'The upstream provider rejected the gateway credentials',
      options,
    );
  }
  if (status === 429) return withRetryAfter('upstream_rate_limited', message, headers, options);
  if (status === 529 || status === 503)
    return withRetryAfter('upstream_overloaded', message, headers, options);
  if (status === 408 || status === 504) return new GatewayError('upstream_timeout', message, options);
  if (status >= 500) return new GatewayError('upstream_error', message, options);
  if (status === 413) return new GatewayError('request_too_large', message, options);
  if (status === 400 && CONTEXT_LENGTH.test(message)) {
    return new GatewayError('context_length_exceeded', message, options);
  }
  return new GatewayError('upstream_client_error', message, { ...options, status });
}

function withRetryAfter(
  code: 'upstream_rate_limited' | 'upstream_overloaded',
  message: string,
  headers: Headers,
  options: { upstreamStatus?: number },
): GatewayError {
  const retryAfterMs = parseRetryAfter(headers);
  return new GatewayError(code, message, {
    ...options,
    ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
  });
}

export function parseAnthropicErrorBody(text: string): { type?: string; message?: string } {
  try {
    const body = JSON.parse(text) as { error?: { type?: unknown; message?: unknown } | null };
    const error = body?.error;
    if (error && typeof error === 'object') {
      return {
        ...(typeof error.type === 'string' ? { type: error.type } : {}),
        ...(typeof error.message === 'string' ? { message: error.message } : {}),
      };
    }
  } catch {
    // Not JSON (an HTML page from a proxy, say): never relay it verbatim.
  }
  return {};
}
