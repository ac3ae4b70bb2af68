/**
 * The Anthropic Messages API (`POST /v1/messages`, JSON and SSE, and
 * `POST /v1/messages/count_tokens`), so applications built on the official
 * Anthropic SDK can point `baseURL` here and reach any configured provider.
 *
 * Requests are translated into the canonical (OpenAI Chat Completions) shape,
 * dispatched like any chat request, and the answer or stream is translated
 * back. Errors, on every step of this route, answer in Anthropic's shape.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { GatewayError, toGatewayError } from '../../core/errors.ts';
import type { ChatCompletionChunk, ChatRequest } from '../../core/types.ts';
import { ClientClosedError, dispatchChat, dispatchChatStream } from '../../pipeline/dispatch.ts';
import { type ModelRoute, type RouteTarget, resolveModel } from '../../pipeline/models.ts';
import { estimatePromptTokens } from '../../pipeline/usage-estimate.ts';
import { anthropicError } from '../../protocols/anthropic/anthropic-errors.ts';
import { toChatPrompt, toChatRequest } from '../../protocols/anthropic/anthropic-request.ts';
import { toAnthropicMessage } from '../../protocols/anthropic/anthropic-response.ts';
import {
  AnthropicStreamTranslator,
  encodeEvent,
  PING_FRAME,
} from '../../protocols/anthropic/anthropic-stream.ts';
import {
  validateCountTokensRequest,
  validateMessagesRequest,
} from '../../protocols/anthropic/anthropic-validate.ts';
import type {
  CountTokensResponse,
  MessageStreamEvent,
  MessagesRequest,
} from '../../protocols/anthropic/anthropic-wire.ts';
import { requireKey } from '../auth.ts';
import type { GatewayContext } from '../context.ts';
import type { ErrorRenderer } from '../error-render.ts';
import { SseWriter } from '../sse-writer.ts';
import {
  beginModelRequest,
  dispatchHeaders,
  finishFailed,
  type ModelDispatch,
  StreamTally,
  settleStream,
} from './model-request.ts';

const ROUTE = '/v1/messages';

const renderError: ErrorRenderer = (error, requestId) => anthropicError(error, requestId);

/** The status this route answers a failure with (Anthropic's, e.g. 529 for overload). */
const anthropicStatus = (error: GatewayError): number => anthropicError(error).status;

/** Anthropic clients read `request-id`; the gateway's `x-request-id` is kept as well. */
async function anthropicHeaders(request: FastifyRequest, reply: FastifyReply): Promise<void> {
  reply.header('request-id', request.id);
}

/**
 * A call that sends the client's Anthropic body to an Anthropic upstream as
 * it is: no translation, nothing lost (documents, server tools, thinking).
 */
export interface AnthropicPassthrough {
  target: RouteTarget;
  body: MessagesRequest;
}

/**
 * Passthrough seam. Once the Anthropic adapter (src/providers/anthropic/) is
 * merged, a target whose provider has `type === 'anthropic'` is answered here
 * through its `messages(body, ctx)` / `streamMessages(body, ctx)` instead of
 * the canonical round trip. Until then no provider qualifies and every
 * request is translated.
 */
export function anthropicPassthrough(
  target: RouteTarget,
  _body: MessagesRequest,
): AnthropicPassthrough | undefined {
  if (target.provider.type !== 'anthropic') return undefined;
  // Wired after merge: the adapter's messages/streamMessages take { target, body } from here.
  return undefined;
}

export function registerAnthropicRoutes(app: FastifyInstance, gw: GatewayContext): void {
  const onRequest = [anthropicHeaders, requireKey(gw.keys)];
  const config = { renderError };

  app.post(ROUTE, { onRequest, config }, async (request, reply) => {
    const body = validateMessagesRequest(request.body);
    const route = resolveModel(gw.models, body.model, request.key!);
    if (anthropicPassthrough(route.targets[0]!, body) !== undefined) {
      // Unreachable until the Anthropic adapter is merged; see anthropicPassthrough.
      throw new GatewayError('internal_error', 'Anthropic passthrough is not wired yet');
    }
    const { chat } = toChatRequest(body);
    const dispatch = {
      ...beginModelRequest(gw, request, reply, route, chat, { route: ROUTE, stream: body.stream === true }),
      estimatePromptTokens: () => estimatePromptTokens(chat),
    };
    if (body.stream === true) return streamMessages(request, reply, gw, body, chat, route, dispatch);
    try {
      const { completion, attempt } = await dispatchChat(route, chat, dispatch);
      const usageSource = completion.usage ? 'upstream' : 'none';
      let message: ReturnType<typeof toAnthropicMessage>;
      try {
        message = toAnthropicMessage(completion, { model: body.model, stopSequences: body.stop_sequences });
      } catch (error) {
        // The upstream answered (and billed) but the answer cannot be given to the client.
        const failure = toGatewayError(error);
        attempt.end({
          status: 'error',
          httpStatus: failure.status,
          errorCode: failure.code,
          usage: completion.usage,
          usageSource,
        });
        throw failure;
      }
      attempt.end({ status: 'ok', httpStatus: 200, usage: completion.usage, usageSource });
      reply.header('x-switchyard-provider', attempt.provider);
      reply.headers(dispatchHeaders(dispatch.report));
      dispatch.recorder.finish(200);
      return message;
    } catch (error) {
      finishFailed(reply, dispatch, error, anthropicStatus);
    }
  });

  app.post(`${ROUTE}/count_tokens`, { onRequest, config }, async (request): Promise<CountTokensResponse> => {
    const body = validateCountTokensRequest(request.body);
    resolveModel(gw.models, body.model, request.key!);
    const prompt = toChatPrompt(body);
    // An estimate (~4 characters a token, the gateway's usual one), not a tokenizer count: the
    // model's own tokenizer lives upstream. An Anthropic upstream could answer exactly, after merge.
    const toolChars = prompt.tools ? JSON.stringify(prompt.tools).length : 0;
    return { input_tokens: estimatePromptTokens(prompt) + Math.ceil(toolChars / 4) };
  });
}

type StreamDispatch = ModelDispatch & { estimatePromptTokens: () => number };

async function streamMessages(
  request: FastifyRequest,
  reply: FastifyReply,
  gw: GatewayContext,
  body: MessagesRequest,
  chat: ChatRequest,
  route: ModelRoute,
  dispatch: StreamDispatch,
): Promise<void> {
  const { recorder } = dispatch;
  let start: Awaited<ReturnType<typeof dispatchChatStream>>;
  try {
    start = await dispatchChatStream(route, chat, dispatch);
  } catch (error) {
    // Nothing was sent yet: the client gets a normal error response with its status.
    finishFailed(reply, dispatch, error, anthropicStatus);
  }
  const { attempt, rest } = start;
  reply.hijack();
  const writer = new SseWriter(reply.raw, gw.config.server.heartbeat_ms, PING_FRAME);
  // A hijacked reply does not send the headers set on it: pass them on explicitly.
  writer.start({
    ...dispatch.routingHeaders,
    ...dispatchHeaders(dispatch.report),
    'request-id': request.id,
    'x-request-id': request.id,
    'x-switchyard-provider': attempt.provider,
  });
  const send = (events: MessageStreamEvent[]): Promise<boolean> =>
    events.length === 0 ? Promise.resolve(!writer.closed) : writer.frame(events.map(encodeEvent).join(''));

  const translator = new AnthropicStreamTranslator({ model: body.model, stopSequences: body.stop_sequences });
  const tally = new StreamTally(attempt);
  let failure: GatewayError | undefined;
  let chunk: ChatCompletionChunk | undefined = start.first;
  try {
    while (chunk !== undefined) {
      tally.observe(chunk);
      if (!(await send(translator.push(chunk)))) break;
      const next = await rest.next();
      chunk = next.done ? undefined : next.value;
    }
  } catch (error) {
    if (!(error instanceof ClientClosedError) && !dispatch.signal.aborted) failure = toGatewayError(error);
  }

  const clientGone = dispatch.signal.aborted || writer.closed;
  if (clientGone) await rest.return?.().catch(() => undefined);
  const billed = tally.billed(dispatch.estimatePromptTokens);
  if (failure) {
    // The status is already 200: the failure is an `error` event, as Anthropic sends it.
    await send(translator.error(failure));
    request.log.warn({ code: failure.code }, 'stream failed after start');
  } else if (!clientGone) {
    await send(translator.finish(billed.usage));
  }
  writer.end();
  settleStream(attempt, recorder, { failure, clientGone }, billed);
}
