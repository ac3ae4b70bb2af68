/**
 * GatewayError → Anthropic's error shape and status
 * (https://docs.anthropic.com/en/api/errors): 400 invalid_request_error,
 * 401 authentication_error, 403 permission_error, 404 not_found_error,
 * 413 request_too_large, 429 rate_limit_error, 500 api_error,
 * 504 timeout_error, 529 overloaded_error.
 *
 * The one place that decides how the gateway's errors look to Anthropic
 * clients, both as an HTTP response and as an in-stream `event: error`. The
 * other direction (an Anthropic upstream's error → GatewayError) is the
 * provider's: src/providers/anthropic/anthropic-error.ts.
 */
import type { ErrorCode, GatewayError } from '../../core/errors.ts';
import {
  type AnthropicErrorBody,
  type AnthropicErrorType,
  errorTypeOfStatus,
} from '../../providers/anthropic/index.ts';

interface AnthropicErrorShape {
  type: AnthropicErrorType;
  /** Overrides the gateway status where Anthropic clients expect another one. */
  status?: number;
}

const BY_CODE: Record<ErrorCode, AnthropicErrorShape> = {
  invalid_request: { type: 'invalid_request_error' },
  context_length_exceeded: { type: 'invalid_request_error' },
  invalid_api_key: { type: 'authentication_error' },
  model_not_allowed: { type: 'permission_error' },
  forbidden: { type: 'permission_error' },
  not_found: { type: 'not_found_error' },
  model_not_found: { type: 'not_found_error' },
  request_too_large: { type: 'request_too_large' },
  unsupported_media_type: { type: 'invalid_request_error' },
  rate_limit_exceeded: { type: 'rate_limit_error' },
  budget_exceeded: { type: 'billing_error' },
  // Keeps the upstream's own 4xx status; the type follows that status below.
  upstream_client_error: { type: 'invalid_request_error' },
  // Our provider credentials failed: the client's request was fine, so not its auth error.
  upstream_auth_error: { type: 'api_error' },
  upstream_rate_limited: { type: 'rate_limit_error' },
  // Anthropic clients know overload as 529 and back off on it.
  upstream_overloaded: { type: 'overloaded_error', status: 529 },
  upstream_error: { type: 'api_error' },
  upstream_bad_response: { type: 'api_error' },
  upstream_connect_failed: { type: 'api_error' },
  upstream_timeout: { type: 'timeout_error' },
  // Every target deactivated or open: nothing will serve soon, unlike a momentary overload.
  no_target_available: { type: 'api_error' },
  store_unavailable: { type: 'api_error' },
  upstream_unavailable: { type: 'api_error' },
  shutting_down: { type: 'overloaded_error' },
  internal_error: { type: 'api_error' },
};

export interface AnthropicErrorResponse {
  status: number;
  body: AnthropicErrorBody;
}

export function toAnthropicError(error: GatewayError, requestId?: string): AnthropicErrorResponse {
  const shape = BY_CODE[error.code];
  const status = shape.status ?? error.status;
  const type = error.code === 'upstream_client_error' ? errorTypeOfStatus(status) : shape.type;
  const body: AnthropicErrorBody = { type: 'error', error: { type, message: error.message } };
  if (requestId !== undefined) body.request_id = requestId;
  return { status, body };
}
