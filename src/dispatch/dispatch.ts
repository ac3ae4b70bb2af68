/**
 * Dispatch by kind: chat, chat stream, embeddings, and any call of the
 * caller's own (the Anthropic passthrough), each a walk (walk.ts) with the
 * attempt call and the hedge-loser release of its kind.
 */
import { upstreamBill } from '../billing/bills.ts';
import { embeddingBill } from '../billing/embedding-usage.ts';
import type { Attempt } from '../billing/usage-recorder.ts';
import { GatewayError } from '../core/errors.ts';
import type {
  ChatCompletion,
  ChatCompletionChunk,
  ChatRequest,
  EmbeddingRequest,
  EmbeddingResponse,
} from '../core/types.ts';
import type { AttemptContext } from '../providers/types.ts';
import type { ModelRoute, RouteTarget } from '../routing/model-table.ts';
import { type AttemptCall, type DispatchOptions, type StreamStart, walk } from './walk.ts';

export {
  type AttemptCall,
  type AttemptObserver,
  type AttemptOutcome,
  type DispatchOptions,
  type DispatchReport,
  GATEWAY_STEPS,
  newDispatchReport,
  type StreamStart,
} from './walk.ts';

/**
 * Any request through the dispatch machinery (breakers, retries, hedging,
 * ordered fallback): `call` runs one attempt on one target, so what is sent
 * may differ per target (an Anthropic body to an Anthropic target, a
 * translated one to the others). `discard` releases a result that lost a
 * hedge race by a hair.
 */
export function dispatchWith<T extends { attempt: Attempt }>(
  route: ModelRoute,
  options: DispatchOptions,
  call: AttemptCall<T>,
  discard: (late: T) => void,
): Promise<T> {
  return walk(route, options, call, discard, undefined);
}

/** A stream counts as served once its first item arrived; a failure before that can still be retried or fall back. */
async function firstItem<Item>(
  opening: Promise<AsyncIterable<Item>>,
  attempt: Attempt,
): Promise<StreamStart<Item>> {
  const stream = await opening;
  const iterator = stream[Symbol.asyncIterator]();
  let first: IteratorResult<Item>;
  try {
    first = await iterator.next();
  } catch (error) {
    await iterator.return?.().catch(() => undefined);
    throw error;
  }
  if (first.done) throw new GatewayError('upstream_bad_response', 'Upstream stream ended without any chunk');
  return { attempt, first: first.value, rest: iterator };
}

function openFirstItem<Item>(
  target: RouteTarget,
  ctx: AttemptContext,
  attempt: Attempt,
  open: AttemptCall<AsyncIterable<Item>>,
): Promise<StreamStart<Item>> {
  return firstItem(open(target, ctx, attempt, undefined), attempt);
}

function discardStream<Item>(late: StreamStart<Item>): void {
  late.rest.return?.().catch(() => undefined);
  late.attempt.hedgeLost();
}

/**
 * A stream through the dispatch machinery: `open` starts one attempt's
 * stream, which counts as served only once its first item arrived, so a
 * failure before that can still be retried or fall back.
 */
export function dispatchStreamWith<Item>(
  route: ModelRoute,
  options: DispatchOptions,
  open: AttemptCall<AsyncIterable<Item>>,
): Promise<StreamStart<Item>> {
  return walk(route, options, openFirstItem<Item>, discardStream<Item>, open);
}

async function chatOnce(
  target: RouteTarget,
  ctx: AttemptContext,
  attempt: Attempt,
  request: ChatRequest,
): Promise<{ completion: ChatCompletion; attempt: Attempt }> {
  const completion = await target.provider.chat({ ...request, model: target.model }, ctx);
  return { completion, attempt };
}

function discardChat(late: { completion: ChatCompletion; attempt: Attempt }): void {
  late.attempt.hedgeLost(upstreamBill(late.completion.usage));
}

export function dispatchChat(
  route: ModelRoute,
  request: ChatRequest,
  options: DispatchOptions,
): Promise<{ completion: ChatCompletion; attempt: Attempt }> {
  return walk(route, options, chatOnce, discardChat, request);
}

function openChatStream(
  target: RouteTarget,
  ctx: AttemptContext,
  attempt: Attempt,
  request: ChatRequest,
): Promise<StreamStart> {
  return firstItem(target.provider.streamChat({ ...request, model: target.model }, ctx), attempt);
}

export function dispatchChatStream(
  route: ModelRoute,
  request: ChatRequest,
  options: DispatchOptions,
): Promise<StreamStart> {
  return walk(route, options, openChatStream, discardStream<ChatCompletionChunk>, request);
}

async function embedOnce(
  target: RouteTarget,
  ctx: AttemptContext,
  attempt: Attempt,
  request: EmbeddingRequest,
): Promise<{ response: EmbeddingResponse; attempt: Attempt }> {
  const response = await target.provider.embed({ ...request, model: target.model }, ctx);
  return { response, attempt };
}

function discardEmbedding(late: { response: EmbeddingResponse; attempt: Attempt }): void {
  late.attempt.hedgeLost(embeddingBill(late.response));
}

export function dispatchEmbeddings(
  route: ModelRoute,
  request: EmbeddingRequest,
  options: DispatchOptions,
): Promise<{ response: EmbeddingResponse; attempt: Attempt }> {
  return walk(route, options, embedOnce, discardEmbedding, request);
}
