/**
 * What a failed upstream call means, before any adapter reads a body: the
 * transport's errors mapped to GatewayErrors, the bound on what is read of a
 * body, and the shape of an adapter's mapping of an error answer.
 */
import { GatewayError } from '../core/errors.ts';

/** Caps what we buffer from a non-streaming upstream body. */
export const MAX_UPSTREAM_BODY_BYTES = 32 * 1024 * 1024;

/**
 * Network-level failures → GatewayError. A client abort is not an upstream
 * failure: it is rethrown as the signal's reason so callers can tell it apart;
 * neither is an error without a transport code, which is passed on unchanged.
 */
export function mapTransportError(error: unknown, clientSignal: AbortSignal): unknown {
  if (clientSignal.aborted) return clientSignal.reason;
  if (GatewayError.is(error)) return error;
  const code = (error as { code?: string } | null)?.code;
  const cause = (error as { cause?: unknown } | null)?.cause;
  if (GatewayError.is(cause)) return cause;
  switch (code) {
    case 'UND_ERR_CONNECT_TIMEOUT':
      return new GatewayError('upstream_timeout', 'Upstream connect timeout', { cause: error });
    case 'UND_ERR_HEADERS_TIMEOUT':
      return firstByteTimeout(error);
    case 'UND_ERR_BODY_TIMEOUT':
      return idleTimeout(error);
    case 'ECONNREFUSED':
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return new GatewayError('upstream_connect_failed', 'Could not connect to the upstream', {
        cause: error,
      });
    case 'UND_ERR_RESPONSE_EXCEEDED_MAX_SIZE':
      return new GatewayError('upstream_bad_response', 'Upstream response too large', { cause: error });
    default:
      // undici and socket errors carry a string code. Anything else (a TypeError
      // in our own parsing, a stack overflow) is the gateway's failure, not the
      // upstream's: it is passed on for dispatch to treat as such.
      return typeof code === 'string'
        ? new GatewayError('upstream_error', 'Upstream connection failed', { cause: error })
        : error;
  }
}

/** No answer (its headers) within the first-byte timeout of the request going out. */
export function firstByteTimeout(cause?: unknown): GatewayError {
  return new GatewayError('upstream_timeout', 'Upstream first-byte timeout', { cause });
}

/** A started answer went silent for longer than the idle timeout. */
export function idleTimeout(cause?: unknown): GatewayError {
  return new GatewayError('upstream_timeout', 'Upstream stopped sending (idle timeout)', { cause });
}

/** Turns an upstream's non-2xx answer (status, headers, body text) into the adapter's GatewayError. */
export type UpstreamErrorMapper = (
  status: number,
  headers: Record<string, string | string[] | undefined>,
  bodyText: string,
) => GatewayError;
