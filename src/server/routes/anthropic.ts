/**
 * The Anthropic Messages API (`POST /v1/messages`, JSON and SSE, and
 * `POST /v1/messages/count_tokens`), so applications built on the official
 * Anthropic SDK can point `baseURL` here and reach any configured provider.
 *
 * The API itself (validation, translation both ways, events, errors, the
 * per-target plan, token counting) is src/api/anthropic/; this file is the
 * HTTP side. Each attempt is sent the way its target takes it (anthropic-dispatch.ts):
 * to an Anthropic target the client's body as written, its answer or events
 * relayed as they came (only `model` renamed); to any other target the
 * canonical (OpenAI Chat Completions) translation, its answer or stream
 * translated back. Errors, on every step of this route, answer in Anthropic's shape.
 */

import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { forwardedAnthropicHeaders } from '../../api/anthropic/anthropic-beta.ts';
import { countTokens, TOKEN_COUNT_HEADER } from '../../api/anthropic/anthropic-count-tokens.ts';
import {
  dispatchMessages,
  dispatchMessagesStream,
  type MessagesPlan,
  type MessagesStreamItem,
  planMessages,
  rawUsage,
  servableTargets,
} from '../../api/anthropic/anthropic-dispatch.ts';
import { toAnthropicError } from '../../api/anthropic/anthropic-inbound-error.ts';
import { toAnthropicMessage } from '../../api/anthropic/anthropic-inbound-response.ts';
import {
  AnthropicInboundStreamEncoder,
  encodeEvent,
  PING_FRAME,
} from '../../api/anthropic/anthropic-inbound-stream.ts';
import { AnthropicEventRelay } from '../../api/anthropic/anthropic-relay.ts';
import { MessageAssembler, messageToEvents } from '../../api/anthropic/anthropic-replay.ts';
import {
  validateCountTokensRequest,
  validateMessagesRequest,
} from '../../api/anthropic/anthropic-validate.ts';
import { AnthropicEventTally } from '../../billing/anthropic-event-tally.ts';
import { upstreamBill } from '../../billing/bills.ts';
import { StreamTally } from '../../billing/stream-tally.ts';
import type { Attempt } from '../../billing/usage-recorder.ts';
import { isCacheableMessage } from '../../cache/cache-policy.ts';
import type { CacheEntry } from '../../cache/cache-store.ts';
import type { RequestCache } from '../../cache/request-cache.ts';
import { GatewayError, toGatewayError } from '../../core/errors.ts';
import { estimatePromptTokens, maxOutputTokens } from '../../core/token-estimate.ts';
import type { Billed, ChatCompletion, JsonObject } from '../../core/types.ts';
import type { StreamStart } from '../../dispatch/dispatch.ts';
import type {
  AnthropicMessage,
  MessageStreamEvent,
  MessagesRequest,
} from '../../providers/anthropic/index.ts';
import { type ModelRoute, resolveModel } from '../../routing/model-table.ts';
import { requireKey } from '../auth.ts';
import { abortOnClientClose } from '../client-abort.ts';
import type { GatewayContext } from '../context.ts';
import type { ErrorRenderer } from '../error-render.ts';
import { type Sent, SseWriter } from '../sse-writer.ts';
import { answerFromMemory, lookupCached, openRequestCache, sendCachedJson } from './model-cache.ts';
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

const ROUTE = '/v1/messages';

const renderError: ErrorRenderer = (error, requestId) => toAnthropicError(error, requestId);

/** The status this route answers a failure with (Anthropic's, e.g. 529 for overload). */
const anthropicStatus = (error: GatewayError): number => toAnthropicError(error).status;

/** Anthropic clients read `request-id`; the gateway's `x-request-id` is kept as well. */
async function anthropicHeaders(request: FastifyRequest, reply: FastifyReply): Promise<void> {
  reply.header('request-id', request.id);
}

export function registerAnthropicRoutes(app: FastifyInstance, gw: GatewayContext): void {
  const onRequest = [anthropicHeaders, requireKey(gw.keys)];
  const config = { renderError };

  app.post(ROUTE, { onRequest, config }, async (request, reply) => {
    const body = validateMessagesRequest(request.body);
    const route = resolveModel(gw.models, body.model, request.key!);
    // Planned once, when first needed: a token limit's estimate or the dispatch below (not for a cache hit).
    let planned: ReturnType<typeof planMessages> | undefined;
    const planOf = () => (planned ??= planMessages(body, forwardedAnthropicHeaders(request.headers)));
    const limited = gw.limits.admit(
      request,
      reply,
      route,
      () => ({ prompt: estimatePromptTokens(planOf().view), output: maxOutputTokens(planOf().view) }),
      body.metadata?.user_id,
    );
    if (limited !== undefined) await limited;
    const cached = openRequestCache(gw, request, route, 'messages', body);
    if (body.stream !== true) {
      const answered = answerFromMemory(gw, request, reply, cached, { route: ROUTE, model: body.model });
      if (answered !== undefined) return answered;
    }
    // Only an Anthropic target gets them (anthropic-dispatch.ts); anthropic-version never (anthropic-beta.ts).
    const plan = planOf();
    const preparing = prepareRouting(gw, request, reply, route, plan.view);
    if (preparing !== undefined) await preparing;
    const dispatch: ChatDispatch = beginModelRequest(gw, request, reply, route, plan.view, {
      route: ROUTE,
      stream: body.stream === true,
      estimatePromptTokens: () => estimatePromptTokens(plan.view),
    });
    const hit = cached.active ? await lookupCached(gw, cached, dispatch) : undefined;
    if (hit !== undefined && body.stream === true) return replayMessages(request, reply, gw, dispatch, hit);
    reply.header(CACHE_HEADER, cached.status);
    if (hit !== undefined) return sendCachedJson(reply, dispatch.recorder, hit);
    try {
      dispatch.targets = servableTargets(plan, dispatch.targets ?? route.targets);
    } catch (error) {
      cached.abandon();
      finishFailed(reply, dispatch, error, anthropicStatus);
    }
    if (body.stream === true) return streamMessages(request, reply, gw, plan, route, dispatch, cached);
    try {
      const answer = await dispatchMessages(route, plan, dispatch);
      const message = answer.raw
        ? relayedMessage(answer.raw, body, answer.attempt)
        : translatedMessage(answer.completion, body, answer.attempt);
      storeMessage(cached, message, dispatch.recorder.costMicros);
      finishOk(reply, dispatch, answer.attempt);
      return message;
    } catch (error) {
      cached.abandon();
      finishFailed(reply, dispatch, error, anthropicStatus);
    }
  });

  app.post(`${ROUTE}/count_tokens`, { onRequest, config }, async (request, reply) => {
    const body = validateCountTokensRequest(request.body);
    const route = resolveModel(gw.models, body.model, request.key!);
    const { count, exact } = await countTokens(route, body, {
      requestId: request.id,
      headers: request.headers,
      // A client gone before the answer cancels the upstream call, as for a model request.
      signal: abortOnClientClose(reply),
      isActive: (id) => gw.router.isActive(id),
      log: request.log,
    });
    reply.header(TOKEN_COUNT_HEADER, exact ? 'exact' : 'estimate');
    return count;
  });
}

/** The upstream's answer as it came, naming the model the client asked for. */
function relayedMessage(raw: JsonObject, body: MessagesRequest, attempt: Attempt): JsonObject {
  attempt.ok(rawUsage(raw));
  return { ...raw, model: body.model };
}

function translatedMessage(
  completion: ChatCompletion,
  body: MessagesRequest,
  attempt: Attempt,
): AnthropicMessage {
  let message: AnthropicMessage;
  try {
    message = toAnthropicMessage(completion, { model: body.model, stopSequences: body.stop_sequences });
  } catch (error) {
    // The upstream answered (and billed) but the answer cannot be given to the client.
    const failure = toGatewayError(error);
    attempt.failed(failure, upstreamBill(completion.usage));
    throw failure;
  }
  attempt.ok(completion.usage);
  return message;
}

async function streamMessages(
  request: FastifyRequest,
  reply: FastifyReply,
  gw: GatewayContext,
  plan: MessagesPlan,
  route: ModelRoute,
  dispatch: ChatDispatch,
  cached: RequestCache,
): Promise<void> {
  let start: StreamStart<MessagesStreamItem>;
  try {
    start = await dispatchMessagesStream(route, plan, dispatch);
  } catch (error) {
    cached.abandon();
    // Nothing was sent yet: the client gets a normal error response with its status.
    finishFailed(reply, dispatch, error, anthropicStatus);
  }
  reply.hijack();
  const writer = new SseWriter(reply.raw, gw.config.server.heartbeat_ms, PING_FRAME);
  writer.start({ ...streamHeaders(reply, dispatch, start.attempt), 'request-id': request.id });
  // Each attempt's stream is of one kind, which its first item shows.
  // Assembled only for the cache: a request that bypasses it does no work for it.
  const assembler = cached.active ? new MessageAssembler(plan.body.model) : undefined;
  const outcome =
    'raw' in start.first
      ? await relayRaw(writer, plan.body, start, dispatch, assembler)
      : await relayTranslated(writer, plan.body, start, dispatch, assembler);
  // Only a stream that ended whole is stored: never a failed, cut or abandoned one.
  const whole = outcome.failure || outcome.clientGone ? undefined : assembler?.message();
  // Billed (its row written now, spooled before the last frames: a client that saw its answer
  // complete has its usage on disk), then stored with what it cost.
  const durable = dispatch.recorder.settleStream(start.attempt, outcome, outcome.billed);
  if (whole === undefined) cached.abandon();
  else storeMessage(cached, whole, dispatch.recorder.costMicros);
  await durable;
  if (outcome.closing) await writer.frame(outcome.closing);
  if (outcome.failure) {
    // The status is already 200: the failure is an `error` event, as Anthropic sends it.
    await writer.frame(encodeEvent({ type: 'error', error: toAnthropicError(outcome.failure).body.error }));
    request.log.warn({ code: outcome.failure.code }, 'stream failed after start');
  }
  writer.end();
}

/** Stores a whole, usable message (as the client saw it); anything else is abandoned. */
function storeMessage(
  cached: RequestCache,
  message: JsonObject | AnthropicMessage,
  costMicros: number | null,
): void {
  if (!isCacheableMessage(message)) {
    cached.abandon();
    return;
  }
  const usage = message['usage'] as { input_tokens?: number; output_tokens?: number } | undefined;
  cached.store(
    message,
    {
      prompt_tokens: usage?.input_tokens ?? 0,
      completion_tokens: usage?.output_tokens ?? 0,
    },
    costMicros,
  );
}

/** A cached message to a streaming request: replayed as the events a stream of it would have sent. */
async function replayMessages(
  request: FastifyRequest,
  reply: FastifyReply,
  gw: GatewayContext,
  dispatch: ChatDispatch,
  hit: CacheEntry,
): Promise<void> {
  const message = JSON.parse(hit.body) as AnthropicMessage;
  reply.hijack();
  const writer = new SseWriter(reply.raw, gw.config.server.heartbeat_ms, PING_FRAME);
  writer.start({ ...streamHeaders(reply, dispatch), 'request-id': request.id });
  const events = messageToEvents(message);
  const last = events.pop()!;
  await writer.frame(events.map(encodeEvent).join(''));
  // Billed (spooled) before the last frame, as for any stream.
  dispatch.recorder.cacheHit();
  await dispatch.recorder.durable();
  if (!writer.closed) await writer.frame(encodeEvent(last));
  writer.end();
}

interface StreamOutcome {
  failure: GatewayError | undefined;
  clientGone: boolean;
  billed: Billed;
  /** Frames that close a complete stream, sent once it is billed. */
  closing?: string;
}

/** Passthrough: the upstream's events go out as they came. */
async function relayRaw(
  writer: SseWriter,
  body: MessagesRequest,
  start: StreamStart<MessagesStreamItem>,
  dispatch: ChatDispatch,
  assembler: MessageAssembler | undefined,
): Promise<StreamOutcome> {
  const tally = new AnthropicEventTally();
  const relay = new AnthropicEventRelay(body.model, {
    observe: (event) => {
      tally.observe(event);
      assembler?.observe(event);
    },
  });
  const ended = await relayStream(start, dispatch.signal, writer, (item) => {
    if (!('raw' in item)) throw new GatewayError('internal_error', 'A passthrough stream yielded a chunk');
    const frame = relay.relay(item.raw);
    if (tally.sawContent) start.attempt.markFirstToken();
    return writer.frame(frame);
  });
  return { ...ended, billed: tally.billed(dispatch.estimatePromptTokens) };
}

/** Canonical chunks from a non-Anthropic target, translated into Anthropic events. */
async function relayTranslated(
  writer: SseWriter,
  body: MessagesRequest,
  start: StreamStart<MessagesStreamItem>,
  dispatch: ChatDispatch,
  assembler: MessageAssembler | undefined,
): Promise<StreamOutcome> {
  const translator = new AnthropicInboundStreamEncoder({
    model: body.model,
    stopSequences: body.stop_sequences,
  });
  const tally = new StreamTally(start.attempt);
  const send = (events: MessageStreamEvent[]): Sent => {
    if (assembler !== undefined) for (const event of events) assembler.observe(event);
    return events.length === 0 ? !writer.closed : writer.frame(events.map(encodeEvent).join(''));
  };
  const ended = await relayStream(start, dispatch.signal, writer, (item) => {
    if (!('chunk' in item))
      throw new GatewayError('internal_error', 'A translated stream yielded a raw event');
    tally.observe(item.chunk);
    return send(translator.push(item.chunk));
  });
  const billed = tally.billed(dispatch.estimatePromptTokens);
  if (ended.failure || ended.clientGone) return { ...ended, billed };
  const closing = translator.finish(billed.usage);
  if (assembler !== undefined) for (const event of closing) assembler.observe(event);
  return { ...ended, billed, closing: closing.map(encodeEvent).join('') };
}
