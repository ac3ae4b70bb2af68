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
