/**
 * One error model for the whole gateway.
 *
 * Every failure is a `GatewayError` with a stable string `code` from `ERRORS`;
 * the table fixes its HTTP status, the OpenAI error `type`, whether the
 * routing layer may retry it on another attempt or target, and whether it
 * counts against the target's circuit breaker (`target`: only failures the
 * upstream itself produced do; a client's or the gateway's own never). Behaviour keys off
 * `code`, never off message text. Routes render the same error in the shape of
 * the API they serve (OpenAI here; Anthropic's in its own route).
 */

export const ERRORS = {
  // Client-side problems: final, never retried, never count against a provider.
  invalid_request: { status: 400, type: 'invalid_request_error', retryable: false, target: false },
  context_length_exceeded: { status: 400, type: 'invalid_request_error', retryable: false, target: false },
  invalid_api_key: { status: 401, type: 'authentication_error', retryable: false, target: false },
  model_not_allowed: { status: 403, type: 'permission_error', retryable: false, target: false },
  forbidden: { status: 403, type: 'permission_error', retryable: false, target: false },
  not_found: { status: 404, type: 'not_found_error', retryable: false, target: false },
  model_not_found: { status: 404, type: 'not_found_error', retryable: false, target: false },
  request_too_large: { status: 413, type: 'invalid_request_error', retryable: false, target: false },
  unsupported_media_type: { status: 415, type: 'invalid_request_error', retryable: false, target: false },
  rate_limit_exceeded: { status: 429, type: 'rate_limit_error', retryable: false, target: false },
  // 402, not 429: SDKs retry a 429, and a spent budget does not come back in seconds.
  budget_exceeded: { status: 402, type: 'insufficient_quota', retryable: false, target: false },
  // Upstream problems. `upstream_client_error` carries the upstream's own 4xx status.
  upstream_client_error: { status: 400, type: 'invalid_request_error', retryable: false, target: false },
  // Our credentials, not the target's health: an open breaker would not fix them.
  upstream_auth_error: { status: 502, type: 'upstream_error', retryable: false, target: false },
  upstream_rate_limited: { status: 429, type: 'rate_limit_error', retryable: true, target: true },
  upstream_overloaded: { status: 503, type: 'upstream_error', retryable: true, target: true },
  upstream_error: { status: 502, type: 'upstream_error', retryable: true, target: true },
  upstream_bad_response: { status: 502, type: 'upstream_error', retryable: true, target: true },
  upstream_connect_failed: { status: 502, type: 'upstream_error', retryable: true, target: true },
  upstream_timeout: { status: 504, type: 'timeout_error', retryable: true, target: true },
  /** Every target's circuit breaker is open: nothing was sent upstream. */
  upstream_unavailable: { status: 503, type: 'service_unavailable', retryable: true, target: false },
  // Gateway-side problems.
  shutting_down: { status: 503, type: 'service_unavailable', retryable: true, target: false },
  // Every target of the model is deactivated by an operator: nothing to retry on.
  no_target_available: { status: 503, type: 'service_unavailable', retryable: false, target: false },
  // A shared store an admin operation needs (the cache's shared tiers or its invalidation channel) cannot be reached.
  store_unavailable: { status: 503, type: 'service_unavailable', retryable: true, target: false },
  // A bug or exhausted resource in the gateway itself: never the upstream's fault, never retried.
  internal_error: { status: 500, type: 'server_error', retryable: false, target: false },
} as const satisfies Record<string, { status: number; type: string; retryable: boolean; target: boolean }>;

export type ErrorCode = keyof typeof ERRORS;

export interface GatewayErrorOptions {
  /** The request field at fault, OpenAI's `param`. */
  param?: string;
  /** Overrides the table's status (an upstream 4xx passed through keeps its own). */
  status?: number;
  /** How long the upstream asked us to wait, when it said (Retry-After). */
  retryAfterMs?: number;
  /** The upstream's HTTP status, when the error came from one. */
  upstreamStatus?: number;
  cause?: unknown;
}

const MARKER = Symbol.for('switchyard.GatewayError');

export class GatewayError extends Error {
  override readonly name = 'GatewayError';
  readonly code: ErrorCode;
  readonly status: number;
  readonly type: string;
  readonly retryable: boolean;
  readonly param: string | undefined;
  readonly retryAfterMs: number | undefined;
  readonly upstreamStatus: number | undefined;
  readonly [MARKER] = true;

  constructor(code: ErrorCode, message: string, options: GatewayErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    const entry = ERRORS[code];
    this.code = code;
    this.status = options.status ?? entry.status;
    this.type = entry.type;
    this.retryable = entry.retryable;
    this.param = options.param;
    this.retryAfterMs = options.retryAfterMs;
    this.upstreamStatus = options.upstreamStatus;
  }

  /** Survives duplicate copies of this package in one process. */
  static is(value: unknown): value is GatewayError {
    return typeof value === 'object' && value !== null && (value as { [MARKER]?: boolean })[MARKER] === true;
  }
}

/** Whether a failure with this code says the target itself is unhealthy (the table's `target` column). */
export function countsAgainstTarget(code: string | null | undefined): boolean {
  return code != null && Object.hasOwn(ERRORS, code) && ERRORS[code as ErrorCode].target;
}

/** Thrown when the client went away: not an upstream failure, and nobody is left to answer. */
export class ClientClosedError extends Error {
  override readonly name = 'ClientClosedError';
  constructor() {
    super('client closed the connection');
  }
}

/** Normalises anything thrown into a GatewayError at a boundary. */
export function toGatewayError(error: unknown): GatewayError {
  if (GatewayError.is(error)) return error;
  return new GatewayError('internal_error', 'Internal gateway error', { cause: error });
}

/** OpenAI's error body: `{ error: { message, type, code, param } }`. */
export function openAIErrorBody(error: GatewayError): {
  error: { message: string; type: string; code: string; param: string | null };
} {
  return {
    error: { message: error.message, type: error.type, code: error.code, param: error.param ?? null },
  };
}
