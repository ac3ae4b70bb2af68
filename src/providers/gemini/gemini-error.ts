/**
 * Google API errors (`{"error":{"code","message","status","details"}}`) → GatewayError.
 *
 * The gRPC-style `status` is trusted alongside the HTTP code because it is
 * more specific: a bad API key is a 400 INVALID_ARGUMENT with reason
 * API_KEY_INVALID, which is our credentials' fault (502 to the client, with a
 * generic message), not the client's. A 429's wait comes from `retry-after`
 * when present, else from the body's google.rpc.RetryInfo `retryDelay` ("7s").
 */
import { GatewayError } from '../../core/errors.ts';
import { parseRetryAfter } from '../../util/retry-after.ts';
import type { GeminiErrorBody } from './gemini-wire.ts';

interface ParsedError {
  message?: string;
  status?: string;
  retryDelayMs?: number;
  reasons: string[];
}

const TOKEN_LIMIT =
  /token count.*exceeds|exceeds the maximum number of tokens|too many tokens|context window/i;

export function mapGeminiError(
  status: number,
  headers: Record<string, string | string[] | undefined>,
  bodyText: string,
  redact: (text: string) => string,
): GatewayError {
  const parsed = parseGeminiError(bodyText);
  const message = redact(parsed.message ?? `Upstream returned HTTP ${status}`);
  const options = { upstreamStatus: status };
  const rpc = parsed.status;
  if (status >= 300 && status < 400) {
    return new GatewayError(
      'upstream_bad_response',
      'Upstream answered with a redirect; redirects are not followed',
      options,
    );
  }
  if (
    status === 401 ||
    status === 403 ||
    rpc === 'UNAUTHENTICATED' ||
    rpc === 'PERMISSION_DENIED' ||
    parsed.reasons.includes('API_KEY_INVALID')
  ) {
    return new GatewayError(
      'upstream_auth_error',
      'The upstream provider rejected the gateway credentials',
      options,
    );
  }
  if (status === 429 || rpc === 'RESOURCE_EXHAUSTED') {
    const retryAfterMs = parseRetryAfter(headers) ?? parsed.retryDelayMs;
    return new GatewayError('upstream_rate_limited', message, {
      ...options,
      ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
    });
  }
  if (status === 504 || status === 408 || rpc === 'DEADLINE_EXCEEDED') {
    return new GatewayError('upstream_timeout', message, options);
  }
  if (status === 503 || rpc === 'UNAVAILABLE') {
    const retryAfterMs = parseRetryAfter(headers) ?? parsed.retryDelayMs;
    return new GatewayError('upstream_overloaded', message, {
      ...options,
      ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
    });
  }
  if (status >= 500) return new GatewayError('upstream_error', message, options);
  if (TOKEN_LIMIT.test(parsed.message ?? '')) {
    return new GatewayError('context_length_exceeded', message, options);
  }
  return new GatewayError('upstream_client_error', message, {
    ...options,
    status: status >= 400 ? status : 502,
  });
}

/** The HTTP status Google pairs with a gRPC status, for errors that arrive inside a 200 stream. */
export function httpStatusOf(rpcStatus: string | undefined, code: number | undefined): number {
  if (typeof code === 'number' && code >= 400 && code < 600) return code;
  switch (rpcStatus) {
    case 'INVALID_ARGUMENT':
    case 'FAILED_PRECONDITION':
      return 400;
    case 'UNAUTHENTICATED':
      return 401;
    case 'PERMISSION_DENIED':
      return 403;
    case 'NOT_FOUND':
      return 404;
    case 'RESOURCE_EXHAUSTED':
      return 429;
    case 'UNAVAILABLE':
      return 503;
    case 'DEADLINE_EXCEEDED':
      return 504;
    default:
      return 500;
  }
}

export function parseGeminiError(text: string): ParsedError {
  const out: ParsedError = { reasons: [] };
  let body: GeminiErrorBody | GeminiErrorBody[];
  try {
    body = JSON.parse(text) as GeminiErrorBody | GeminiErrorBody[];
  } catch {
    // An HTML page from a proxy, say: never relay it verbatim.
    return out;
  }
  // Stream endpoints have been seen to wrap the envelope in an array.
  const error = (Array.isArray(body) ? body[0] : body)?.error;
  if (!error || typeof error !== 'object') return out;
  if (typeof error.message === 'string') out.message = error.message;
  if (typeof error.status === 'string') out.status = error.status;
  for (const detail of Array.isArray(error.details) ? error.details : []) {
    if (typeof detail?.reason === 'string') out.reasons.push(detail.reason);
    if (typeof detail?.retryDelay === 'string') {
      const match = /^(\d+(?:\.\d+)?)s$/.exec(detail.retryDelay.trim());
      if (match) out.retryDelayMs = Math.round(Number(match[1]) * 1000);
    }
  }
  return out;
}
