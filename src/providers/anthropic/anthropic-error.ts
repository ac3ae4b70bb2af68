/**
 * Anthropic error responses (`{"type":"error","error":{"type","message"}}`)
 * and `error` stream events → GatewayError: the body's message and type, and
 * whether it says the prompt is over the context window; what they mean for
 * retries and the client (529 `overloaded_error` is retryable overload) is
 * decided once for every adapter (../upstream-error.ts).
 */
import type { GatewayError } from '../../core/errors.ts';
import { statusOfErrorType } from '../../protocols/anthropic/anthropic-error-types.ts';
import { classifyUpstreamError, type UpstreamHeaders } from '../upstream-error.ts';

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
