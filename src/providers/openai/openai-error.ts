/**
 * OpenAI-compatible upstream error responses → GatewayError: the body's
 * message, `param` and `code` (`context_length_exceeded`); what they mean for
 * retries and the client is decided once for every adapter (../upstream-error.ts).
 */
import type { GatewayError } from '../../core/errors.ts';
import { classifyUpstreamError, type UpstreamHeaders } from '../upstream-error.ts';
import type { OpenAIErrorBody } from './openai-wire.ts';

export function mapOpenAIError(
  status: number,
  headers: UpstreamHeaders,
  bodyText: string,
  redact: (text: string) => string,
): GatewayError {
  const parsed = parseErrorBody(bodyText);
  return classifyUpstreamError({
    status,
    headers,
    upstreamStatus: status,
    message: redact(parsed.message ?? `Upstream returned HTTP ${status}`),
    ...(parsed.param ? { param: parsed.param } : {}),
    contextLength: parsed.code === 'context_length_exceeded',
  });
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
