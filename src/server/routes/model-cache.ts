/**
 * The response cache on the model routes: the HTTP side of
 * src/cache/request-cache.ts. A route opens the request's cache (the
 * model's settings and the request's headers), looks up before dispatch, and
 * stores or abandons after; a hit is billed as one `cache` row with no
 * upstream tokens and says `x-switchyard-cache: hit`.
 */
import type { UsageRecorder } from '../../billing/usage-recorder.ts';
import type { CacheApi } from '../../cache/cache-key.ts';
import type { CacheEntry } from '../../cache/cache-store.ts';
import { RequestCache } from '../../cache/request-cache.ts';
import { ATTR } from '../../observability/trace-attributes.ts';
import { failAndEnd, type TraceSpan } from '../../observability/tracing.ts';
import type { ModelRoute } from '../../routing/model-table.ts';
import type { GatewayContext } from '../context.ts';
import type { GatewayReply, GatewayRequest } from '../exchange.ts';
import { CACHE_HEADER, type ModelDispatch, recordRequest, sayCost } from './model-request.ts';

/** @throws GatewayError (400) when a cache header is malformed. */
export function openRequestCache(
  gw: GatewayContext,
  request: GatewayRequest,
  route: ModelRoute,
  api: CacheApi,
  body: { model: string },
): RequestCache {
  // Most models cache nothing: one shared, stateless bypass for all their requests.
  const settings = route.config.cache;
  if (gw.cache === undefined || !settings.enabled) return RequestCache.BYPASS;
  return new RequestCache(gw.cache, {
    api,
    body,
    bodyText: request.bodyText,
    model: body.model,
    settings,
    key: request.key!,
    headers: request.headers,
    semantic:
      gw.semantic !== undefined && settings.semantic.enabled
        ? { cache: gw.semantic, embedder: gw.embedderFor(settings.semantic.embedder) }
        : undefined,
  });
}

/**
 * Looks the request up; its ledger rows and the `x-switchyard-cache` header
 * then say what the cache did. A hit is returned for the route to serve
 * (`sendCachedJson`, or replayed as a stream); a miss leaves the request
 * leading its key.
 */
export async function lookupCached(
  gw: GatewayContext,
  cached: RequestCache,
  dispatch: ModelDispatch,
): Promise<CacheEntry | undefined> {
  const span = dispatch.recorder.trace.child('cache lookup');
  const startedAt = performance.now();
  let hit: CacheEntry | undefined;
  try {
    hit = await cached.lookup(dispatch.signal);
  } catch (error) {
    failAndEnd(span, error);
    throw error;
  }
  if (cached.status !== 'bypass') gw.observeCacheLookup((performance.now() - startedAt) / 1000);
  dispatch.recorder.cacheStatus = cached.status;
  if (span.recording) endCacheSpan(span, cached.status);
  return hit;
}

/** What the lookup found, on its span; `tier` when only one tier was asked (process memory, before dispatch). */
function endCacheSpan(span: TraceSpan, status: string, tier?: string): void {
  span.set(ATTR.cacheStatus, status);
  span.set(ATTR.cacheTier, tier);
  span.end();
}

/**
 * Answers a non-streaming request from the cache: records its row (cost 0)
 * and returns the body for the handler to return (see `jsonText`). The row is
 * durable before the answer leaves, as for any answer: the send path waits
 * for it (request-lifecycle.ts, `whenSendable`).
 */
export function sendCachedJson(reply: GatewayReply, recorder: UsageRecorder, hit: CacheEntry): string {
  recorder.cacheHit();
  sayCost(reply, recorder);
  return jsonText(reply, hit.body);
}

/**
 * `text`, already JSON, for an async handler to return: sent as it is (a JSON
 * content type keeps Fastify from serializing it). Returning the text, not
 * `reply.send(text)`: an async handler that returns the reply hands Fastify a
 * thenable, and while the answer waits for the ledger's group commit the
 * reply's `then` waits for the response to finish through stream listeners.
 * Sent that way, the upstream's own text made a request 6.7 µs dearer than
 * serializing it had (interleaved rounds), though it serialized nothing.
 */
export function jsonText(reply: GatewayReply, text: string): string {
  reply.type('application/json; charset=utf-8');
  return text;
}

/**
 * Answers a non-streaming request from process memory when it holds the
 * answer, before any dispatch set-up (routing, abort signal): a hit is not
 * routed and calls nothing upstream. Undefined when memory does not hold it.
 */
export function answerFromMemory(
  gw: GatewayContext,
  request: GatewayRequest,
  reply: GatewayReply,
  cached: RequestCache,
  info: { route: string; model: string },
): string | undefined {
  if (!cached.active) return undefined;
  const startedAt = performance.now();
  const hit = cached.lookupNow();
  if (hit === undefined) return undefined;
  // Traced only when it answers (a miss is traced by the full lookup that follows, one span per
  // request); the probe is synchronous and sub-microsecond, so the span starting after it says the same.
  const span = request.trace.child('cache lookup');
  if (span.recording) endCacheSpan(span, 'hit', 'memory');
  gw.observeCacheLookup((performance.now() - startedAt) / 1000);
  const recorder = recordRequest(gw, request, info.model, { route: info.route, stream: false });
  reply.header(CACHE_HEADER, 'hit');
  return sendCachedJson(reply, recorder, hit);
}
