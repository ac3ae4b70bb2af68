/**
 * Outbound: an Anthropic upstream's Messages response → canonical chat
 * completion. (Inbound, canonical → the Message an Anthropic client gets, is
 * src/api/anthropic/anthropic-inbound-response.ts.)
 *
 * Text blocks become `content`, `tool_use` blocks become `tool_calls` (input
 * serialised as the arguments string), thinking becomes `reasoning_content`
 * plus `thinking_blocks` (the blocks as sent, signatures included, so a client
 * can hand them back on the next turn, as Anthropic requires with tools).
 */
import { GatewayError } from '../../core/errors.ts';
import type { ChatCompletion, ToolCall } from '../../core/types.ts';
import { toFinishReason } from './anthropic-stop.ts';
import { fromAnthropicToolUse } from './anthropic-tools.ts';
import { toCanonicalUsage } from './anthropic-usage.ts';
import type { AnthropicMessage, ContentBlock } from './anthropic-wire.ts';

export function fromAnthropicMessage(message: AnthropicMessage, created = nowSeconds()): ChatCompletion {
  if (message?.type !== 'message' || !Array.isArray(message.content)) {
    throw new GatewayError('upstream_bad_response', 'Upstream response is not an Anthropic message');
  }
  let text = '';
  let reasoning = '';
  const toolCalls: ToolCall[] = [];
  const thinkingBlocks: ContentBlock[] = [];
  for (const block of message.content) {
    switch (block.type) {
      case 'text':
        text += block.text;
        break;
      case 'tool_use':
        toolCalls.push(fromAnthropicToolUse(block));
        break;
      case 'thinking':
        reasoning += block.thinking;
        thinkingBlocks.push(block);
        break;
      case 'redacted_thinking':
        thinkingBlocks.push(block);
        break;
      // Server tool blocks and future types have no canonical form: dropped.
    }
  }
  const choiceMessage: ChatCompletion['choices'][number]['message'] = {
    role: 'assistant',
    content: text.length === 0 && toolCalls.length > 0 ? null : text,
  };
  if (toolCalls.length > 0) choiceMessage.tool_calls = toolCalls;
  if (thinkingBlocks.length > 0) {
    choiceMessage['reasoning_content'] = reasoning;
    choiceMessage['thinking_blocks'] = thinkingBlocks;
  }
  const completion: ChatCompletion = {
    id: message.id,
    object: 'chat.completion',
    created,
    model: message.model,
    choices: [
      {
        index: 0,
        message: choiceMessage,
        finish_reason: toFinishReason(message.stop_reason),
        logprobs: null,
      },
    ],
  };
  if (message.usage) completion.usage = toCanonicalUsage(message.usage);
  return completion;
}

export function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}
