/**
 * The OpenAI-compatible API: chat completions (JSON and SSE), embeddings, models.
 */

import type { FastifyInstance } from 'fastify';
import { ChunkFrameEncoder } from '../../api/openai/chunk-frame.ts';
import { answerText } from '../../api/openai/model-swap.ts';
import { validateChatRequest, validateEmbeddingRequest } from '../../api/openai/openai-validate.ts';
import { embeddingBill } from '../../billing/embedding-usage.ts';
import { StreamTally } from '../../billing/stream-tally.ts';
import { isCacheableCompletion } from '../../cache/cache-policy.ts';
import type { CacheEntry } from '../../cache/cache-store.ts';
import { CompletionAssembler, completionToChunks } from '../../cache/completion-chunks.ts';
import type { RequestCache } from '../../cache/request-cache.ts';
import { openAIErrorBody } from '../../core/errors.ts';
import { estimateEmbeddingTokens, estimatePromptTokens, maxOutputTokens } from '../../core/token-estimate.ts';
import type { ChatCompletion, ChatRequest } from '../../core/types.ts';
import { dispatchChat, dispatchChatStream, dispatchEmbeddings } from '../../dispatch/dispatch.ts';
import { batchableText } from '../../dispatch/embedding-batches.ts';
import { type ModelRoute, resolveModel, visibleModels } from '../../routing/model-table.ts';
import { requireKey } from '../auth.ts';
import type { GatewayContext } from '../context.ts';
import type { GatewayReply, GatewayRequest } from '../exchange.ts';
import { SseWriter } from '../sse-writer.ts';
import { answerFromMemory, jsonText, lookupCached, openRequestCache, sendCachedJson } from './model-cache.ts';
import {
  beginModelRequest,
  CACHE_HEADER,
  type ChatDispatch,
  finishFailed,
  finishOk,
  prepareRouting,
  relayStream,
  streamHeaders,
} from './model-request.ts';

export function registerOpenAIRoutes(app: FastifyInstance, gw: GatewayContext): void {
  const onRequest = requireKey(gw.keys);

  app.post('/v1/chat/completions', { onRequest }, chatCompletions(gw));

  app.post('/v1/embeddings', { onRequest }, async (request, reply) => {
    const body = validateEmbeddingRequest(request.body);
    const route = resolveModel(gw.models, body.model, request.key!);
    const limited = gw.limits.admit(
      request,
      reply,
      route,
      () => ({ prompt: estimateEmbeddingTokens(body.input), output: 0 }),
      body.user,
    );
    if (limited !== undefined) await limited;
    const cached = openRequestCache(gw, request, route, 'embeddings', body);
    const answered = answerFromMemory(gw, request, reply, cached, {
      route: '/v1/embeddings',
      model: body.model,
    });
    if (answered !== undefined) return answered;
    const dispatch = beginModelRequest(gw, request, reply, route, body, {
      route: '/v1/embeddings',
      stream: false,
    });
    const hit = cached.active ? await lookupCached(gw, cached, dispatch) : undefined;
    reply.header(CACHE_HEADER, cached.status);
    if (hit !== undefined) return sendCachedJson(reply, dispatch.recorder, hit);
    try {
      const batches = gw.embeddingBatches;
      const text = batches === undefined ? undefined : batchableText(route, body);
      const { response, attempt } =
        text === undefined
          ? await dispatchEmbeddings(route, body, dispatch)
          : await batches!.dispatch(route, body, text, dispatch);
      const billed = embeddingBill(response);
      // A batched request's attempt was already billed these counts (its share): this ending is ignored.
      attempt.ok(billed.usage, billed.source);
      const wire = answerText(response, body.model);
      response.model = body.model;
      cached.store(response, billed.usage, dispatch.recorder.costMicros, wire);
      finishOk(reply, dispatch, attempt);
      return wire === undefined ? response : jsonText(reply, wire);
    } catch (error) {
      cached.abandon();
      finishFailed(reply, dispatch, error);
    }
  });

  app.get('/v1/models', { onRequest }, async (request) => ({
    object: 'list',
    data: visibleModels(gw.models, request.key!).map((r) => ({
      id: r.name,
      object: 'model',
      created: r.created,
      owned_by: 'switchyard',
    })),
  }));

  // Model ids may contain '/', so the id is the rest of the path.
  app.get('/v1/models/*', { onRequest }, async (request) => {
    // The router has already decoded the path once; decoding again would misread '%'.
    const id = (request.params as { '*': string })['*'];
    const route = resolveModel(gw.models, id, request.key!);
    return { id: route.name, object: 'model', created: route.created, owned_by: 'switchyard' };
  });
}

/**
 * POST /v1/chat/completions: JSON and SSE. Served by the model lane
 * (lane/model-lane.ts) for the common request, by Fastify's route for the rest.
 */
export function chatCompletions(gw: GatewayContext) {
  return async (request: GatewayRequest, reply: GatewayReply): Promise<unknown> => {
    const body = validateChatRequest(request.body);
    const route = resolveModel(gw.models, body.model, request.key!);
    const limited = gw.limits.admit(
      request,
      reply,
      route,
      () => ({ prompt: estimatePromptTokens(body), output: maxOutputTokens(body) }),
      body.user,
    );
    if (limited !== undefined) await limited;
    const cached = openRequestCache(gw, request, route, 'chat', body);
    if (body.stream !== true) {
      const answered = answerFromMemory(gw, request, reply, cached, {
        route: '/v1/chat/completions',
        model: body.model,
      });
      if (answered !== undefined) return answered;
    }
    const preparing = prepareRouting(gw, request, reply, route, body);
    if (preparing !== undefined) await preparing;
    const dispatch = beginModelRequest(gw, request, reply, route, body, {
      route: '/v1/chat/completions',
      stream: body.stream === true,
      estimatePromptTokens: () => estimatePromptTokens(body),
    });
    const hit = cached.active ? await lookupCached(gw, cached, dispatch) : undefined;
    if (hit !== undefined && body.stream === true) return replayChat(reply, gw, body, dispatch, hit);
    reply.header(CACHE_HEADER, cached.status);
    if (hit !== undefined) return sendCachedJson(reply, dispatch.recorder, hit);
    if (body.stream === true) return streamChat(request, reply, gw, body, route, dispatch, cached);
    try {
      const { completion, attempt } = await dispatchChat(route, body, dispatch);
      attempt.ok(completion.usage);
      // Clients see the model name they asked for, as with any OpenAI endpoint:
      // in the upstream's own text when it spoke OpenAI's format, else serialized.
      const wire = answerText(completion, body.model);
      completion.model = body.model;
      storeCompletion(cached, completion, dispatch.recorder.costMicros, wire);
      finishOk(reply, dispatch, attempt);
      return wire === undefined ? completion : jsonText(reply, wire);
    } catch (error) {
      cached.abandon();
      finishFailed(reply, dispatch, error);
    }
  };
}

async function streamChat(
  request: GatewayRequest,
  reply: GatewayReply,
  gw: GatewayContext,
  body: ChatRequest,
  route: ModelRoute,
  dispatch: ChatDispatch,
  cached: RequestCache,
): Promise<void> {
  const { recorder } = dispatch;
  let start: Awaited<ReturnType<typeof dispatchChatStream>>;
  try {
    start = await dispatchChatStream(route, body, dispatch);
  } catch (error) {
    cached.abandon();
    // Nothing was sent yet: the client gets a normal JSON error with its status.
    finishFailed(reply, dispatch, error);
  }
  const { attempt } = start;
  const clientWantsUsage = body.stream_options?.include_usage === true;
  reply.hijack();
  const writer = new SseWriter(reply.raw, gw.config.server.heartbeat_ms);
  writer.start(streamHeaders(reply, dispatch, attempt));

  const tally = new StreamTally(attempt);
  // Assembled only for the cache: a request that bypasses it does no work for it.
  const assembler = cached.active ? new CompletionAssembler() : undefined;
  const frames = new ChunkFrameEncoder(body.model, clientWantsUsage);
  const { failure, clientGone } = await relayStream(start, dispatch.signal, writer, (chunk) => {
    tally.observe(chunk);
    // Usage is always requested upstream (for billing); relay it only if the client asked.
    const relayed = clientWantsUsage || !(chunk.choices.length === 0 && chunk.usage);
    // A chunk going out as it came is written in the bytes it came in (a whole frame), else encoded.
    const out = relayed ? (frames.wireFrame(chunk) ?? frames.encode(chunk)) : undefined;
    if (assembler !== undefined) {
      // Clients see the model name they asked for, cached answers too.
      chunk.model = body.model;
      assembler.observe(chunk);
    }
    if (out === undefined) return true;
    return typeof out === 'string' ? writer.data(out) : writer.frame(out);
  });
  const billed = tally.billed(dispatch.estimatePromptTokens);
  // Only a stream that ended whole is stored: never a failed, cut or abandoned one.
  // Billed (its row written now, spooled before the last frame: a client that saw its answer
  // complete has its usage on disk), then stored with what it cost.
  const durable = recorder.settleStream(attempt, { failure, clientGone }, billed);
  if (failure || clientGone || assembler === undefined) cached.abandon();
  else storeCompletion(cached, assembler.completion(), recorder.costMicros);
  await durable;

  if (failure) {
    // The status is already 200: report the failure in-stream, as OpenAI does.
    await writer.data(JSON.stringify(openAIErrorBody(failure)));
    request.log.warn({ code: failure.code }, 'stream failed after start');
  } else if (!clientGone) {
    await writer.data('[DONE]');
  }
  writer.end();
}

/** Stores a whole, usable answer (as the client saw it: `text` when it was sent as text); anything else is abandoned. */
function storeCompletion(
  cached: RequestCache,
  completion: ChatCompletion,
  costMicros: number | null,
  text?: string,
): void {
  if (isCacheableCompletion(completion)) cached.store(completion, completion.usage, costMicros, text);
  else cached.abandon();
}

/** A cached answer to a streaming request: replayed as the chunks a stream of it would have sent. */
async function replayChat(
  reply: GatewayReply,
  gw: GatewayContext,
  body: ChatRequest,
  dispatch: ChatDispatch,
  hit: CacheEntry,
): Promise<void> {
  const completion = JSON.parse(hit.body) as ChatCompletion;
  reply.hijack();
  const writer = new SseWriter(reply.raw, gw.config.server.heartbeat_ms);
  writer.start(streamHeaders(reply, dispatch));
  for (const chunk of completionToChunks(completion, body.stream_options?.include_usage === true)) {
    if (!(await writer.data(JSON.stringify(chunk)))) break;
  }
  // Billed (spooled) before the last frame, as for any stream.
  dispatch.recorder.cacheHit();
  await dispatch.recorder.durable();
  if (!writer.closed) await writer.data('[DONE]');
  writer.end();
}
