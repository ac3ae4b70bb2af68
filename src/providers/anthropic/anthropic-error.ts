/**
 * Anthropic's errors on the wire (https://docs.anthropic.com/en/api/errors).
 *
 * Error responses (`{"type":"error","error":{"type","message"}}`) and `error`
 * stream events → GatewayError: the body's message and type, and whether it
 * says the prompt is over the context window; what they mean for retries and
 * the client (529 `overloaded_error` is retryable overload) is decided once
 * for every adapter (../upstream-error.ts).
 *
 * The error types and the HTTP status each comes with are one table, read
 * both ways: this adapter reads a mid-stream `error` event (no status left) as
 * the status its type stands for; the inbound `/v1/messages` API
 * (src/api/anthropic/) names the type of a status it answers with.
 */
import type { GatewayError } from '../../core/errors.ts';
import { classifyUpstreamError, type UpstreamHeaders } from '../upstream-error.ts';
import type { AnthropicErrorType } from './anthropic-wire.ts';

const STATUS_OF_TYPE: Readonly<Record<AnthropicErrorType, number>> = {
  invalid_request_error: 400,
  authentication_error: 401,
  billing_error: 402,
  permission_error: 403,
  not_found_error: 404,
  request_too_large: 413,
  rate_limit_error: 429,
  api_error: 500,
  timeout_error: 504,
  overloaded_error: 529,
};

const TYPE_OF_STATUS = new Map<number, AnthropicErrorType>(
  Object.entries(STATUS_OF_TYPE).map(([type, status]) => [status, type as AnthropicErrorType]),
);

/** Unknown types count as a server error: nothing says the request was at fault. */
export function statusOfErrorType(type: string | undefined): number {
  return (
    (type !== undefined && Object.hasOwn(STATUS_OF_TYPE, type)
      ? STATUS_OF_TYPE[type as AnthropicErrorType]
      : undefined) ?? 500
  );
}

/** Other statuses take the type of their class (4xx: the request, 5xx: the server). */
export function errorTypeOfStatus(status: number): AnthropicErrorType {
  return TYPE_OF_STATUS.get(status) ?? (status >= 500 ? 'api_error' : 'invalid_request_error');
}

const CONTEXT_LENGTH = /prompt is too long|context (window|length)|too many (input )?tokens/i;

export function mapAnthropicError(
  status: number,
  headers: UpstreamHeaders,
  bodyText: string,
  redact: (text: string) => string,
): GatewayError {
  const parsed = parseAnthropicErrorBody(bodyText);
  const message = redact(parsed.message ?? `Upstream returned HTTP ${status}`);
  return classifyUpstreamError({
    status,
    headers,
    upstreamStatus: status,
    message,
    contextLength: CONTEXT_LENGTH.test(message),
  });
}

/**
 * An `error` event after a 200 stream started: the status is gone, so the
 * error type stands for the status Anthropic sends it with, and the same rules apply.
 */
export function mapAnthropicStreamError(data: string, redact: (text: string) => string): GatewayError {
  const parsed = parseAnthropicErrorBody(data);
  const message = redact(parsed.message ?? 'Upstream reported an error mid-stream');
  return classifyUpstreamError({
    status: statusOfErrorType(parsed.type),
    message,
    contextLength: CONTEXT_LENGTH.test(message),
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
