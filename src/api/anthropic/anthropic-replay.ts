/**
 * A whole Anthropic message as the events a stream of it would have sent
 * (a cached answer served to a streaming `/v1/messages` request): the
 * message's start with its input usage, each content block's start, one
 * delta carrying all of it and its stop, the stop reason with the output
 * usage, and the end.
 */
import type {
  AnthropicMessage,
  ContentBlock,
  ContentBlockDelta,
  MessageStreamEvent,
} from '../../providers/anthropic/index.ts';

export function messageToEvents(message: AnthropicMessage): MessageStreamEvent[] {
  const events: MessageStreamEvent[] = [
    {
      type: 'message_start',
      message: {
        ...message,
        content: [],
        stop_reason: null,
        stop_sequence: null,
        usage: { ...message.usage, output_tokens: 0 },
      },
    },
  ];
  message.content.forEach((block, index) => {
    events.push({ type: 'content_block_start', index, content_block: emptied(block) });
    for (const delta of deltasOf(block)) events.push({ type: 'content_block_delta', index, delta });
    events.push({ type: 'content_block_stop', index });
  });
  events.push(
    {
      type: 'message_delta',
      delta: { stop_reason: message.stop_reason, stop_sequence: message.stop_sequence },
      usage: { output_tokens: message.usage.output_tokens },
    },
    { type: 'message_stop' },
  );
  return events;
}

/** A block as its start event shows it: the content comes in deltas. */
function emptied(block: ContentBlock): ContentBlock {
  switch (block.type) {
    case 'text':
      return { type: 'text', text: '' };
    case 'tool_use':
      return { type: 'tool_use', id: block.id, name: block.name, input: {} };
    case 'thinking':
      return { type: 'thinking', thinking: '', signature: '' };
    default:
      // Redacted thinking has no deltas: it starts whole.
      return block;
  }
}

function deltasOf(block: ContentBlock): ContentBlockDelta[] {
  switch (block.type) {
    case 'text':
      return block.text === '' ? [] : [{ type: 'text_delta', text: block.text }];
    case 'tool_use':
      return [{ type: 'input_json_delta', partial_json: JSON.stringify(block.input) }];
    case 'thinking':
      return [
        { type: 'thinking_delta', thinking: block.thinking },
        { type: 'signature_delta', signature: block.signature },
      ];
    default:
      return [];
  }
}

/**
 * The whole message a stream's events describe (a streamed answer stored
 * once complete): the inverse of `messageToEvents`. `message()` is undefined
 * until `message_stop` arrived, or when a tool's input never became valid
 * JSON: an answer the gateway could not rebuild exactly is not stored.
 */
export class MessageAssembler {
  readonly #model: string;
  #message: AnthropicMessage | undefined;
  readonly #blocks: ContentBlock[] = [];
  readonly #toolJson = new Map<number, string>();
  #complete = false;
  #broken = false;

  /** `model`: the name the client asked for, as its answers carry. */
  constructor(model: string) {
    this.#model = model;
  }

  observe(event: MessageStreamEvent): void {
    switch (event.type) {
      case 'message_start':
        this.#message = {
          ...event.message,
          model: this.#model,
          content: [],
          usage: { ...event.message.usage },
        };
        break;
      case 'content_block_start':
        this.#blocks[event.index] = { ...event.content_block };
        break;
      case 'content_block_delta':
        this.#applyDelta(event.index, event.delta);
        break;
      case 'content_block_stop': {
        const block = this.#blocks[event.index];
        const json = this.#toolJson.get(event.index);
        if (block?.type === 'tool_use' && json !== undefined) {
          try {
            block.input = JSON.parse(json) as Record<string, unknown>;
          } catch {
            this.#broken = true;
          }
        }
        break;
      }
      case 'message_delta':
        if (this.#message === undefined) break;
        this.#message.stop_reason = event.delta.stop_reason;
        this.#message.stop_sequence = event.delta.stop_sequence;
        // Cumulative counts: the last one seen is the total.
        for (const [name, value] of Object.entries(event.usage)) {
          if (value !== undefined && value !== null) this.#message.usage[name] = value;
        }
        break;
      case 'message_stop':
        this.#complete = true;
        break;
      default:
        break;
    }
  }

  message(): AnthropicMessage | undefined {
    if (!this.#complete || this.#broken || this.#message === undefined) return undefined;
    if (this.#blocks.some((block) => block === undefined)) return undefined;
    return { ...this.#message, content: [...this.#blocks] };
  }

  #applyDelta(index: number, delta: ContentBlockDelta): void {
    const block = this.#blocks[index];
    if (block === undefined) {
      this.#broken = true;
      return;
    }
    if (delta.type === 'text_delta' && block.type === 'text') block.text += delta.text;
    else if (delta.type === 'input_json_delta' && block.type === 'tool_use') {
      this.#toolJson.set(index, (this.#toolJson.get(index) ?? '') + delta.partial_json);
    } else if (delta.type === 'thinking_delta' && block.type === 'thinking') block.thinking += delta.thinking;
    else if (delta.type === 'signature_delta' && block.type === 'thinking')
      block.signature += delta.signature;
    // Citations and deltas of kinds this gateway does not know: the copy would not be exact.
    else this.#broken = true;
  }
}
