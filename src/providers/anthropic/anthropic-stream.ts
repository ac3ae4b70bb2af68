/**
 * Outbound: an Anthropic upstream's SSE events → canonical chunks, one event
 * at a time. (Inbound, canonical chunks → events for an Anthropic client, is
 * src/api/anthropic/anthropic-inbound-stream.ts.)
 *
 * Anthropic streams a message as content blocks (text, tool_use, thinking),
 * each opened, filled with deltas and closed; the stop reason and cumulative
 * output usage arrive in `message_delta`, the input usage in `message_start`.
 * Every event is translated as it arrives (nothing is buffered beyond the
 * running totals), and the stream ends with one usage chunk (`choices: []`),
 * the adapter contract. An `error` event becomes a thrown GatewayError.
 */
import { GatewayError } from '../../core/errors.ts';
import type { ChatCompletionChunk, ChunkChoice, FinishReason } from '../../core/types.ts';
import type { SseEvent } from '../sse.ts';
import { type EventReader, readEventItems } from '../upstream-event-stream.ts';
import { mapAnthropicStreamError } from './anthropic-error.ts';
import { nowSeconds } from './anthropic-response.ts';
import { toFinishReason } from './anthropic-stop.ts';
import { mergeStreamUsage, toCanonicalUsage } from './anthropic-usage.ts';
import type { AnthropicUsage, ContentBlock, MessageStreamEvent } from './anthropic-wire.ts';

type Delta = ChunkChoice['delta'];

export class AnthropicUpstreamStreamParser {
  readonly #redact: (text: string) => string;
  readonly #created: number;
  #id = '';
  #model = '';
  #usage: AnthropicUsage = { input_tokens: 0, output_tokens: 0 };
  #sawUsage = false;
  /** Anthropic content block index → canonical tool_calls index. */
  readonly #toolIndex = new Map<number, number>();
  #started = false;
  #finished = false;

  constructor(redact: (text: string) => string = (text) => text, created = nowSeconds()) {
    this.#redact = redact;
    this.#created = created;
  }

  /** True once `message_stop` arrived. */
  get finished(): boolean {
    return this.#finished;
  }

  /** One SSE event → the chunks it means (often one, sometimes none). */
  translate(event: SseEvent): ChatCompletionChunk[] {
    if (event.event === 'error') throw mapAnthropicStreamError(event.data, this.#redact);
    if (event.data.length === 0 || this.#finished) return [];
    const parsed = parse(event.data);
    switch (parsed.type) {
      case 'message_start': {
        const message = parsed.message;
        this.#id = message?.id ?? '';
        this.#model = message?.model ?? '';
        if (message?.usage) this.#addUsage(message.usage);
        this.#started = true;
        return [this.#chunk({ role: 'assistant', content: '' })];
      }
      case 'content_block_start':
        return this.#blockStart(parsed.index, parsed.content_block);
      case 'content_block_delta': {
        this.#requireStart();
        const delta = parsed.delta;
        switch (delta?.type) {
          case 'text_delta':
            return [this.#chunk({ content: delta.text })];
          case 'input_json_delta': {
            const index = this.#toolIndex.get(parsed.index);
            if (index === undefined || delta.partial_json.length === 0) return [];
            return [this.#chunk({ tool_calls: [{ index, function: { arguments: delta.partial_json } }] })];
          }
          case 'thinking_delta':
            return [this.#chunk({ reasoning_content: delta.thinking })];
          case 'signature_delta':
            return [this.#chunk({ reasoning_signature: delta.signature })];
          default:
            return [];
        }
      }
      case 'message_delta': {
        this.#requireStart();
        if (parsed.usage) this.#addUsage(parsed.usage);
        const reason = parsed.delta?.stop_reason;
        return reason ? [this.#chunk({}, toFinishReason(reason))] : [];
      }
      case 'message_stop': {
        this.#requireStart();
        this.#finished = true;
        if (!this.#sawUsage) return [];
        return [{ ...this.#base(), choices: [], usage: toCanonicalUsage(this.#usage) }];
      }
      case 'error':
        throw mapAnthropicStreamError(event.data, this.#redact);
      default:
        // ping, content_block_stop, and event types added after this was written.
        return [];
    }
  }

  /** After the last byte: a stream cut before `message_stop` is an upstream failure. */
  end(): void {
    if (!this.#finished) {
      throw new GatewayError('upstream_bad_response', 'Upstream stream ended before completion');
    }
  }

  #blockStart(index: number, block: ContentBlock | undefined): ChatCompletionChunk[] {
    this.#requireStart();
    switch (block?.type) {
      case 'text':
        return block.text ? [this.#chunk({ content: block.text })] : [];
      case 'tool_use': {
        const toolIndex = this.#toolIndex.size;
        this.#toolIndex.set(index, toolIndex);
        return [
          this.#chunk({
            tool_calls: [
              {
                index: toolIndex,
                id: block.id,
                type: 'function',
                function: { name: block.name, arguments: '' },
              },
            ],
          }),
        ];
      }
      case 'thinking':
        return block.thinking ? [this.#chunk({ reasoning_content: block.thinking })] : [];
      case 'redacted_thinking':
        return [this.#chunk({ redacted_thinking: block.data })];
      default:
        return [];
    }
  }

  #addUsage(usage: Partial<AnthropicUsage>): void {
    this.#sawUsage = true;
    mergeStreamUsage(this.#usage, usage);
  }

  #requireStart(): void {
    if (!this.#started) {
      throw new GatewayError('upstream_bad_response', 'Upstream stream did not start with message_start');
    }
  }

  #base(): { id: string; object: 'chat.completion.chunk'; created: number; model: string } {
    return { id: this.#id, object: 'chat.completion.chunk', created: this.#created, model: this.#model };
  }

  #chunk(delta: Delta, finishReason: FinishReason | null = null): ChatCompletionChunk {
    return { ...this.#base(), choices: [{ index: 0, delta, finish_reason: finishReason }] };
  }
}

function parse(data: string): MessageStreamEvent {
  let value: unknown;
  try {
    value = JSON.parse(data);
  } catch {
    throw new GatewayError('upstream_bad_response', 'Upstream sent a stream event that is not valid JSON');
  }
  if (value === null || typeof value !== 'object' || typeof (value as { type?: unknown }).type !== 'string') {
    throw new GatewayError('upstream_bad_response', 'Upstream sent an unexpected stream event');
  }
  return value as MessageStreamEvent;
}

/** Reads an Anthropic event stream as canonical chunks (../upstream-event-stream.ts). */
export class AnthropicChunkReader implements EventReader<ChatCompletionChunk> {
  readonly #parser: AnthropicUpstreamStreamParser;

  constructor(redact: (text: string) => string) {
    this.#parser = new AnthropicUpstreamStreamParser(redact);
  }

  read(event: SseEvent, out: ChatCompletionChunk[]): void {
    for (const chunk of this.#parser.translate(event)) out.push(chunk);
  }

  end(): void {
    this.#parser.end();
  }
}

/** Bytes (split anywhere) → canonical chunks, yielded per event. */
export function fromAnthropicStream(
  source: AsyncIterable<Uint8Array>,
  redact: (text: string) => string = (text) => text,
): AsyncGenerator<ChatCompletionChunk> {
  return readEventItems(source, new AnthropicChunkReader(redact));
}

/** Reads an Anthropic event stream as raw events for passthrough, checked the same way: errors thrown, a cut stream reported. */
export class AnthropicRawEventReader implements EventReader<{ event: string; data: string }> {
  readonly #redact: (text: string) => string;
  #stopped = false;

  constructor(redact: (text: string) => string) {
    this.#redact = redact;
  }

  read(event: SseEvent, out: { event: string; data: string }[]): void {
    if (event.event === 'error') throw mapAnthropicStreamError(event.data, this.#redact);
    if (event.event === 'message_stop') this.#stopped = true;
    out.push({ event: event.event, data: event.data });
  }

  end(): void {
    if (!this.#stopped)
      throw new GatewayError('upstream_bad_response', 'Upstream stream ended before completion');
  }
}
