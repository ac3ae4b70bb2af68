/**
 * Requests the gateway sends through its own pipeline on behalf of a key:
 * async jobs and batch lines. They are injected into the Fastify app (no
 * socket, no port), so they pass every hook and route a client's request
 * passes (auth, limits and budget, routing, resilience, cache, ledger,
 * metrics, the access log): a job is the same request, not a copy of it.
 *
 * They authenticate with the key store's internal credential (random per
 * process, never on the wire) and may name their ledger request id, so work
 * run again after a crash is billed once (the ledger keys rows by request id
 * and attempt).
 */
import type { FastifyInstance } from 'fastify';
import type { KeyStore } from '../auth/key-store.ts';
import type { RequestExecutor } from '../jobs/batch-runner.ts';
import { parseRetryAfter } from '../util/retry-after.ts';

/** The request id an internal request asks for; honoured only with an internal credential. */
export const INTERNAL_REQUEST_ID_HEADER = 'x-switchyard-internal-request-id';

/** Sends calls through `app` as `keys`' internal credential for the call's key. */
export function internalExecutor(app: FastifyInstance, keys: KeyStore): RequestExecutor {
  return async (call) => {
    await keys.ensureCached(call.keyId);
    const response = await app.inject({
      method: 'POST',
      url: call.endpoint,
      headers: {
        authorization: `Bearer ${keys.internalCredential(call.keyId)}`,
        'content-type': 'application/json',
        [INTERNAL_REQUEST_ID_HEADER]: call.requestId,
      },
      payload: JSON.stringify(call.body),
      ...(call.signal ? { signal: call.signal } : {}),
    });
    let body: unknown;
    try {
      body = response.json();
    } catch {
      body = {
        error: { message: 'The gateway answered with a body that is not JSON', type: 'server_error' },
      };
    }
    return {
      status: response.statusCode,
      body,
      retryAfterMs: parseRetryAfter(response.headers as Record<string, string | string[] | undefined>),
    };
  };
}
