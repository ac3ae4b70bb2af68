/**
 * Google API errors (`{"error":{"code","message","status","details"}}`) → GatewayError.
 *
 * The gRPC-style `status` is trusted alongside the HTTP code because it is
 * more specific: a bad API key is a 400 INVALID_ARGUMENT with reason
 * API_KEY_INVALID, which is our credentials' fault (502 to the client, with a
 * generic message), not the client's. A 429's wait comes from `retry-after`
 * when present, else from the body's google.rpc.RetryInfo `retryDelay` ("7s").
 */
import type { GatewayError } from '../../core/errors.ts';
import { classifyUpstreamError, type UpstreamHeaders } from '../upstream-error.ts';
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
  headers: UpstreamHeaders,
  bodyText: string,
  redact: (text: string) => string,
): GatewayError {
  const parsed = parseGeminiError(bodyText);
  const rpc = parsed.status;
  return classifyUpstreamError({
    status,
    headers,
    upstreamStatus: status,
    message: redact(parsed.message ?? `Upstream returned HTTP ${status}`),
    ...(parsed.retryDelayMs !== undefined ? { retryDelayMs: parsed.retryDelayMs } : {}),
    authFailure:
      rpc === 'UNAUTHENTICATED' || rpc === 'PERMISSION_DENIED' || parsed.reasons.includes('API_KEY_INVALID'),
    rateLimited: rpc === 'RESOURCE_EXHAUSTED',
    timedOut: rpc === 'DEADLINE_EXCEEDED',
    overloaded: rpc === 'UNAVAILABLE',
    contextLength: TOKEN_LIMIT.test(parsed.message ?? ''),
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
