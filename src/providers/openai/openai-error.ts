/**
 * OpenAI-compatible upstream error responses → GatewayError.
 *
 * The mapping decides what the routing layer may retry: rate limits, overload
 * and 5xx are retryable; the caller's own 4xx are final and keep their status.
 * A 401/403 from the upstream means *our* provider credentials are wrong: the
 * client gets a 502 with a generic message (their request was fine, and the
 * upstream's message may quote our key).
 */
import { GatewayError } from '../../core/errors.ts';
import { parseRetryAfter } from '../../util/retry-after.ts';

interface OpenAIErrorBody {
  error?: { message?: unknown; type?: unknown; code?: unknown; param?: unknown } | string;
}

export function mapOpenAIError(
  status: number,
  headers: Record<string, string | string[] | undefined>,
  bodyText: string,
  redact: (text: string) => string,
): GatewayError {
  const parsed = parseErrorBody(bodyText);
  const message = redact(parsed.message ?? `Upstream returned HTTP ${status}`);
  const options = { upstreamStatus: status, ...(parsed.param ? { param: parsed.param } : {}) };
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
  if (status === 429) {
    const retryAfterMs = parseRetryAfter(headers);
    return new GatewayError('upstream_rate_limited', message, {
      ...options,
      ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
    });
  }
  if (status === 408 || status === 504) return new GatewayError('upstream_timeout', message, options);
  if (status === 503 || status === 529) {
    const retryAfterMs = parseRetryAfter(headers);
    return new GatewayError('upstream_overloaded', message, {
      ...options,
      ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
    });
  }
  if (status >= 500) return new GatewayError('upstream_error', message, options);
  if (parsed.code === 'context_length_exceeded') {
    return new GatewayError('context_length_exceeded', message, options);
  }
  return new GatewayError('upstream_client_error', message, { ...options, status });
}

function parseErrorBody(text: string): { message?: string; param?: string; code?: string } {
  try {
    const body = JSON.parse(text) as OpenAIErrorBody;
    const error = body.error;
    if (typeof error === 'string') return { message: error };
    if (error && typeof error === 'object') {
      return {
        ...(typeof error.message === 'string' ? { message: error.message } : {}),
        ...(typeof error.param === 'string' ? { param: error.param } : {}),
        ...(typeof error.code === 'string' ? { code: error.code } : {}),
      };
    }
  } catch {
    // Not JSON (an HTML error page from a proxy, say): never relay it verbatim.
  }
  return {};
}
