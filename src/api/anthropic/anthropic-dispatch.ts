/**
 * How an Anthropic Messages request is sent, decided per target inside
 * dispatch: a target whose provider speaks the Messages API gets the client's
 * body as written (only `model` replaced), so nothing is lost to a round trip
 * through the canonical shape (documents, citations, server tools,
 * cache_control, thinking and its signatures, top_k, fields newer than this
 * gateway); any other target gets the canonical translation. A model with
 * targets [anthropic, openai] thus tries the first raw and, on a retryable
 * failure, falls back to the second translated. Only raw attempts carry the
 * client's forwarded headers (`anthropic-beta`): they mean nothing elsewhere.
 */
import { upstreamBill } from '../../billing/bills.ts';
import type { Attempt } from '../../billing/usage-recorder.ts';
import { GatewayError, toGatewayError } from '../../core/errors.ts';
import type {
  ChatCompletion,
  ChatCompletionChunk,
  ChatRequest,
  JsonObject,
  Usage,
} from '../../core/types.ts';
import {
  type DispatchOptions,
  dispatchStreamWith,
  dispatchWith,
  type StreamStart,
} from '../../dispatch/dispatch.ts';
import {
  type AnthropicRawEvent,
  type AnthropicUsage,
  type MessagesRequest,
  speaksAnthropic,
  toCanonicalUsage,
} from '../../providers/anthropic/index.ts';
import type { AttemptContext } from '../../providers/types.ts';
import type { ModelRoute, RouteTarget } from '../../routing/model-table.ts';
import { fromAnthropicRequest, routingView } from './anthropic-inbound-request.ts';

export interface MessagesPlan {
  body: MessagesRequest;
  /** The canonical request for targets that do not speak Anthropic; unset when the body has no canonical form. */
  chat: ChatRequest | undefined;
  /** Why the body has no canonical form (a 400 naming the field). */
  untranslatable: GatewayError | undefined;
  /** What the router and the usage estimator see. */
  view: ChatRequest;
  /** Client headers for Anthropic targets (forwardedAnthropicHeaders); undefined when none. */
  upstreamHeaders: Readonly<Record<string, string>> | undefined;
}

export function planMessages(
  body: MessagesRequest,
  upstreamHeaders?: Readonly<Record<string, string>>,
): MessagesPlan {
  try {
    const { chat } = fromAnthropicRequest(body);
    return { body, chat, untranslatable: undefined, view: chat, upstreamHeaders };
  } catch (error) {
    const failure = toGatewayError(error);
    if (failure.code !== 'invalid_request') throw failure;
    return { body, chat: undefined, untranslatable: failure, view: routingView(body), upstreamHeaders };
  }
}

/**
 * The candidates that can carry the request: all of them, or only those that
 * speak Anthropic when the body has no canonical form. None: the translation's 400.
 */
export function servableTargets(plan: MessagesPlan, candidates: RouteTarget[]): RouteTarget[] {
  if (plan.untranslatable === undefined) return candidates;
  const raw = candidates.filter((target) => speaksAnthropic(target.provider));
  if (raw.length === 0) throw plan.untranslatable;
  return raw;
}

function rawBody(plan: MessagesPlan, target: RouteTarget): JsonObject {
  return { ...plan.body, model: target.model };
}

/** The attempt's context for a raw (Anthropic) attempt: with the client's forwarded headers. */
function rawContext(plan: MessagesPlan, ctx: AttemptContext): AttemptContext {
  return plan.upstreamHeaders === undefined ? ctx : { ...ctx, upstreamHeaders: plan.upstreamHeaders };
}

function translated(plan: MessagesPlan, target: RouteTarget): ChatRequest {
  // servableTargets keeps such targets out; reaching here would be a gateway bug.
  if (plan.chat === undefined) throw plan.untranslatable ?? new GatewayError('internal_error', 'No request');
  return { ...plan.chat, model: target.model };
}

/** The canonical usage of a raw Messages answer, through the same mapping the adapter uses. */
export function rawUsage(message: JsonObject): Usage | undefined {
  const usage = message['usage'];
  if (typeof usage !== 'object' || usage === null || Array.isArray(usage)) return undefined;
  return toCanonicalUsage(usage as AnthropicUsage);
}

export type MessagesAnswer =
  | { attempt: Attempt; raw: JsonObject; completion?: undefined }
  | { attempt: Attempt; completion: ChatCompletion; raw?: undefined };

export function dispatchMessages(
  route: ModelRoute,
  plan: MessagesPlan,
  options: DispatchOptions,
): Promise<MessagesAnswer> {
  return dispatchWith<MessagesAnswer>(
    route,
    options,
    async (target, ctx, attempt) => {
      const provider = target.provider;
      if (speaksAnthropic(provider))
        return { attempt, raw: await provider.messages(rawBody(plan, target), rawContext(plan, ctx)) };
      return { attempt, completion: await provider.chat(translated(plan, target), ctx) };
    },
    (late) => late.attempt.hedgeLost(upstreamBill(late.raw ? rawUsage(late.raw) : late.completion.usage)),
  );
}

export type MessagesStreamItem = { raw: AnthropicRawEvent } | { chunk: ChatCompletionChunk };

async function* tagged<T>(
  source: AsyncIterable<T>,
  tag: (item: T) => MessagesStreamItem,
): AsyncGenerator<MessagesStreamItem> {
  for await (const item of source) yield tag(item);
}

export function dispatchMessagesStream(
  route: ModelRoute,
  plan: MessagesPlan,
  options: DispatchOptions,
): Promise<StreamStart<MessagesStreamItem>> {
  return dispatchStreamWith<MessagesStreamItem>(route, options, async (target, ctx) => {
    const provider = target.provider;
    if (speaksAnthropic(provider)) {
      const events = await provider.streamMessages(rawBody(plan, target), rawContext(plan, ctx));
      return tagged(events, (raw) => ({ raw }));
    }
    return tagged(await provider.streamChat(translated(plan, target), ctx), (chunk) => ({ chunk }));
  });
}
