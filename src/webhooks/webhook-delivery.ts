/**
 * One attempt at delivering one signed webhook: a POST of its body with the
 * Standard Webhooks headers, through a connection the webhook policy
 * (./webhook-url-policy.ts) allowed. Retrying, and what a retry keeps (the
 * `webhook-id`), is the caller's: WebhookSender's in-process schedule, or the
 * job queue's.
 *
 * What makes it safe to point at a URL a client chose:
 * - the address is checked at connect time, by the connector of the pool the
 *   request goes through: a host name is resolved there (the policy's
 *   resolver) and the socket connects only to the addresses just checked; an
 *   address literal, which Node connects to without a lookup, is checked
 *   before the socket is made. No other code path opens the connection.
 * - redirects are not followed (undici's request never follows one): a 3xx is
 *   a failed attempt, so a receiver cannot bounce us to an internal URL;
 * - one deadline over the whole attempt, connect included, and at most 64 KiB
 *   of the answer read (then dropped): a receiver cannot hold us or fill memory;
 * - the outcome's error names the status, the failure code or the policy's
 *   refusal, never the URL (its path or query may be the receiver's secret),
 *   the body or the signature.
 */
import { createRequire } from 'node:module';
import { isIP, type LookupFunction } from 'node:net';
import type { Agent as AgentType, buildConnector as BuildConnector, Dispatcher } from 'undici';
import { type ResolvedAddress, type WebhookPolicy, WebhookPolicyError } from './webhook-url-policy.ts';

// undici's agent, connector and request alone, not its index: that also loads
// fetch, WebSocket and the cache layers (as in src/providers/http.ts, whose
// reasons hold here: every gateway process loads this module).
const requireUndici = createRequire(import.meta.url);
const Agent = requireUndici('undici/lib/dispatcher/agent.js') as typeof AgentType;
const buildConnector = requireUndici('undici/lib/core/connect.js') as typeof BuildConnector;
const request = requireUndici('undici/lib/api/api-request.js') as (
  this: Dispatcher,
  options: Dispatcher.RequestOptions,
) => Promise<Dispatcher.ResponseData>;

/** A delivery as signed (./signature.ts): the same id on every attempt, a fresh timestamp and signature on each. */
export interface SignedWebhook {
  id: string;
  /** Unix seconds, as signed. */
  timestamp: number;
  /** The JSON body, exactly as signed. */
  body: string;
  /** The `webhook-signature` header value (`v1,<base64>`, space-separated when several). */
  signature: string;
}

export interface DeliverOptions {
  /** Which URLs and addresses the delivery may reach. One connection pool per policy. */
  policy: WebhookPolicy;
  /** The whole attempt: connect, send, answer. @default 10000 */
  timeoutMs?: number;
  /** Abandons the attempt (a cancelled job, a closing worker). */
  signal?: AbortSignal;
}

export interface DeliveryOutcome {
  /** A 2xx answer came: delivered. */
  ok: boolean;
  /** The receiver's HTTP status, when it answered. */
  status?: number;
  /** Why it failed, when it did: `HTTP 500`, `timed out after 10000 ms`, `connection failed (ECONNREFUSED)`, the policy's refusal. */
  error?: string;
  /** The webhook policy refused the URL or its address: the same URL will be refused again. */
  refused?: boolean;
  /** How long the attempt took. */
  ms: number;
}

export const DEFAULT_WEBHOOK_TIMEOUT_MS = 10_000;
const MAX_ANSWER_BYTES = 64 * 1024;
/** Connections per receiver; more deliveries to one receiver queue for them. */
const CONNECTIONS_PER_ORIGIN = 16;

/** Makes one delivery attempt; never throws (a failure is an outcome). */
export async function deliverOnce(
  url: string | URL,
  webhook: SignedWebhook,
  options: DeliverOptions,
): Promise<DeliveryOutcome> {
  const started = performance.now();
  const elapsed = () => Math.round(performance.now() - started);
  let target: URL;
  try {
    target = options.policy.checkUrl(url);
  } catch (error) {
    return { ok: false, refused: true, error: errorText(error), ms: elapsed() };
  }
  const timeoutMs = options.timeoutMs ?? DEFAULT_WEBHOOK_TIMEOUT_MS;
  const deadline = AbortSignal.timeout(timeoutMs);
  const signal = options.signal === undefined ? deadline : AbortSignal.any([options.signal, deadline]);
  try {
    const answer = await request.call(agentFor(options.policy), {
      origin: target.origin,
      path: `${target.pathname}${target.search}`,
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'user-agent': 'switchyard-webhooks',
        'webhook-id': webhook.id,
        'webhook-timestamp': String(webhook.timestamp),
        'webhook-signature': webhook.signature,
      },
      body: webhook.body,
      signal,
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
    });
    // Read (so the connection can serve the next delivery) and dropped; a longer answer closes it.
    await answer.body.dump({ limit: MAX_ANSWER_BYTES, signal }).catch(() => undefined);
    const status = answer.statusCode;
    if (status >= 200 && status < 300) return { ok: true, status, ms: elapsed() };
    const error =
      status >= 300 && status < 400 ? `HTTP ${status} (redirects are not followed)` : `HTTP ${status}`;
    return { ok: false, status, error, ms: elapsed() };
  } catch (error) {
    if (error instanceof WebhookPolicyError) {
      return { ok: false, refused: true, error: error.message, ms: elapsed() };
    }
    if (deadline.aborted) return { ok: false, error: `timed out after ${timeoutMs} ms`, ms: elapsed() };
    if (options.signal?.aborted) return { ok: false, error: 'aborted', ms: elapsed() };
    return { ok: false, error: errorText(error), ms: elapsed() };
  }
}

/** Closes the connections kept for `policy`'s deliveries (idle ones also close by themselves within seconds). */
export async function closeWebhookConnections(policy: WebhookPolicy): Promise<void> {
  const agent = agents.get(policy);
  agents.delete(policy);
  await agent?.close();
}

const agents = new WeakMap<WebhookPolicy, AgentType>();

function agentFor(policy: WebhookPolicy): AgentType {
  let agent = agents.get(policy);
  if (agent === undefined) {
    agent = new Agent({
      connect: policyConnector(policy),
      connections: CONNECTIONS_PER_ORIGIN,
      keepAliveTimeout: 4_000,
      keepAliveMaxTimeout: 10_000,
    });
    agents.set(policy, agent);
  }
  return agent;
}

/**
 * undici's own connector (TLS, SNI and certificate checks unchanged), given a
 * `lookup` that resolves through the policy, and an address-literal check in
 * front for the hosts Node connects to without calling `lookup`.
 */
function policyConnector(policy: WebhookPolicy): BuildConnector.connector {
  const lookup: LookupFunction = (hostname, options, callback) => {
    policy.resolveAllowed(hostname).then(
      (addresses) => {
        const wanted: ResolvedAddress[] =
          options.family === 4 || options.family === 6
            ? addresses.filter((a) => a.family === options.family)
            : addresses;
        const first = wanted[0];
        if (first === undefined) {
          callback(Object.assign(new Error(`no IPv${options.family} address`), { code: 'ENOTFOUND' }), '');
        } else if (options.all) {
          callback(null, wanted);
        } else {
          callback(null, first.address, first.family);
        }
      },
      (error: NodeJS.ErrnoException) => callback(error, ''),
    );
  };
  const connect = buildConnector({ lookup });
  return (options, callback) => {
    if (isIP(options.hostname) !== 0) {
      const refusal = policy.refusal(options.hostname, options.hostname);
      if (refusal !== undefined) {
        queueMicrotask(() => callback(new WebhookPolicyError(refusal), null));
        return;
      }
    }
    connect(options, callback);
  };
}

/** A failure in words: a transport code, or the policy's message; not the error's message, which may quote the URL. */
function errorText(error: unknown): string {
  if (error instanceof WebhookPolicyError) return error.message;
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && code.startsWith('UND_ERR_') && code.endsWith('_TIMEOUT')) {
    return `timed out (${code})`;
  }
  if (typeof code === 'string') return `connection failed (${code})`;
  return `delivery failed (${error instanceof Error ? error.name : 'unknown error'})`;
}
