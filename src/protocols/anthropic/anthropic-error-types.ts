/**
 * Anthropic's error types and the HTTP status each comes with
 * (https://docs.anthropic.com/en/api/errors): one table, read both ways. The
 * inbound route names the type of a status it answers with; the outbound
 * adapter reads a mid-stream `error` event (no status left) as the status its
 * type stands for.
 */
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
