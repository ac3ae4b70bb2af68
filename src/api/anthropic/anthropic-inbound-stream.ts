/**
 * Inbound: canonical chunk stream → the Anthropic Messages stream events an
 * Anthropic client gets, one chunk at a time, so each event can go to the
 * client as soon as its chunk arrived. (Outbound, an Anthropic upstream's
 * events → canonical chunks, is src/providers/anthropic/anthropic-stream.ts.)
 *
 * Order (https://docs.anthropic.com/en/docs/build-with-claude/streaming):
 * message_start, then per content block content_block_start, its deltas and
 * content_block_stop (indexes from 0, a text block before tool_use blocks, a
 * new tool call index opening a new block), then message_delta (stop reason,
 * cumulative usage) and message_stop. A failure after the start is one
 * `error` event, after which the caller closes the stream.
 *
 * Chat Completions streams report usage in a last chunk, so message_start
 * says `input_tokens: 0` unless the first chunk already carried usage, and
 * message_delta then carries the real input count (clients overwrite it).
 */
import type { GatewayError } from '../../core/errors.ts';
import type { ChatCompletionChunk, FinishReason, Usage } from '../../core/types.ts';
import {
  fromCanonicalUsage,
  type MessageDeltaEvent,
  type MessageStreamEvent,
  toStopInfo,
} from '../../providers/anthropic/index.ts';
import { toAnthropicError } from './anthropic-inbound-error.ts';
import { newMessageId } from './anthropic-inbound-response.ts';

export interface StreamContext {
  /** The model name the client asked for. */
  model: string;
  stopSequences?: readonly string[] | undefined;
  id?: string;
}

type OpenBlock = { index: number; kind: 'text' } | { index: number; kind: 'tool'; toolIndex: number };

export class AnthropicInboundStreamEncoder {
  readonly #context: StreamContext;
  #started = false;
  #inputKnownAtStart = false;
  #nextIndex = 0;
  #open: OpenBlock | undefined;
  /** Canonical tool call index → content block index. */
  readonly #toolBlocks = new Map<number, number>();
  #finish: FinishReason | null = null;
  #matchedStop: unknown;

  constructor(context: StreamContext) {
    this.#context = context;
  }

  /** Events for one canonical chunk (message_start first, on the first call). */
  push(chunk: ChatCompletionChunk): MessageStreamEvent[] {
    const events: MessageStreamEvent[] = [];
    this.#ensureStarted(events, chunk.usage ?? undefined);
    // An Anthropic message has one answer: choices other than the first (n > 1) have nowhere to go.
    const choice = chunk.choices.find((c) => c.index === 0);
    if (!choice) return events;
    const text = choice.delta.content;
    if (typeof text === 'string' && text.length > 0) {
      if (this.#open?.kind !== 'text') this.#openBlock(events, { type: 'text', text: '' }, undefined);
      events.push({
        type: 'content_block_delta',
        index: this.#open!.index,
        delta: { type: 'text_delta', text },
      });
    }
    for (const call of choice.delta.tool_calls ?? []) {
      let index = this.#toolBlocks.get(call.index);
      if (index === undefined) {
        index = this.#openBlock(
          events,
          {
            type: 'tool_use',
            id: call.id ?? `toolu_${newMessageId().slice(4)}`,
            name: call.function?.name ?? '',
            input: {},
          },
          call.index,
        );
      }
      const partial = call.function?.arguments;
      // Deltas for an earlier call after a later one opened (not seen from OpenAI, which does not
      // interleave calls) keep their own block index; clients accumulate by index.
      if (typeof partial === 'string' && partial.length > 0) {
        events.push({
          type: 'content_block_delta',
          index,
          delta: { type: 'input_json_delta', partial_json: partial },
        });
      }
    }
    if (choice.finish_reason) {
      this.#finish = choice.finish_reason;
      this.#matchedStop = choice['stop_reason'];
    }
    return events;
  }

  /** The closing events, with the usage billed for the attempt (upstream's or estimated). */
  finish(usage: Usage | undefined): MessageStreamEvent[] {
    const events: MessageStreamEvent[] = [];
    this.#ensureStarted(events, undefined);
    this.#closeOpen(events);
    const stop = toStopInfo(this.#finish, this.#matchedStop, this.#context.stopSequences);
    const totals = fromCanonicalUsage(usage);
    const delta: MessageDeltaEvent = {
      type: 'message_delta',
      delta: { stop_reason: stop.stop_reason, stop_sequence: stop.stop_sequence },
      usage: { output_tokens: totals.output_tokens },
    };
    if (!this.#inputKnownAtStart && usage) {
      delta.usage.input_tokens = totals.input_tokens;
      delta.usage.cache_creation_input_tokens = totals.cache_creation_input_tokens;
      delta.usage.cache_read_input_tokens = totals.cache_read_input_tokens;
    }
    events.push(delta, { type: 'message_stop' });
    return events;
  }

  /** The event that ends a stream that failed after it started. */
  error(error: GatewayError): MessageStreamEvent[] {
    const events: MessageStreamEvent[] = [];
    this.#ensureStarted(events, undefined);
    const { body } = toAnthropicError(error);
    events.push({ type: 'error', error: body.error });
    return events;
  }

  #ensureStarted(events: MessageStreamEvent[], usage: Usage | undefined): void {
    if (this.#started) return;
    this.#started = true;
    this.#inputKnownAtStart = usage !== undefined && usage.prompt_tokens > 0;
    const totals = fromCanonicalUsage(this.#inputKnownAtStart ? usage : undefined);
    events.push({
      type: 'message_start',
      message: {
        id: this.#context.id ?? newMessageId(),
        type: 'message',
        role: 'assistant',
        content: [],
        model: this.#context.model,
        stop_reason: null,
        stop_sequence: null,
        usage: { ...totals, output_tokens: 0 },
      },
    });
  }

  #openBlock(
    events: MessageStreamEvent[],
    block:
      | { type: 'text'; text: string }
      | { type: 'tool_use'; id: string; name: string; input: Record<string, never> },
    toolIndex: number | undefined,
  ): number {
    this.#closeOpen(events);
    const index = this.#nextIndex++;
    this.#open = toolIndex === undefined ? { index, kind: 'text' } : { index, kind: 'tool', toolIndex };
    if (toolIndex !== undefined) this.#toolBlocks.set(toolIndex, index);
    events.push({ type: 'content_block_start', index, content_block: block });
    return index;
  }

  #closeOpen(events: MessageStreamEvent[]): void {
    if (!this.#open) return;
    events.push({ type: 'content_block_stop', index: this.#open.index });
    this.#open = undefined;
  }
}

/** One SSE frame: the event name repeated as `event:`, as Anthropic sends it. */
/** `data` may span lines (SSE joins multi-line data with `\n`): each line needs its own `data:` field. */
export function encodeFrame(event: string, data: string): string {
  const body = data.includes('\n') ? data.split('\n').join('\ndata: ') : data;
  return `event: ${event}\ndata: ${body}\n\n`;
}

/** One event as SSE text (JSON text never spans lines, so it is one data line). */
export function encodeEvent(event: MessageStreamEvent): string {
  return encodeFrame(event.type, JSON.stringify(event));
}

export const PING_FRAME = encodeEvent({ type: 'ping' });
