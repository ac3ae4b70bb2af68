/**
 * Inbound: a canonical ChatCompletion → the Anthropic Message an Anthropic
 * client gets, and the pieces the stream encoder shares with it (message ids,
 * tool input). (Outbound, an Anthropic upstream's Message → canonical, is
 * src/providers/anthropic/anthropic-response.ts.)
 */
import { randomBytes } from 'node:crypto';
import { GatewayError } from '../../core/errors.ts';
import { toolInputOf } from '../../core/tool-calls.ts';
import type { ChatChoice, ChatCompletion, ToolCall } from '../../core/types.ts';
import {
  type AnthropicMessage,
  type ContentBlock,
  fromCanonicalUsage,
  toStopInfo,
} from '../../providers/anthropic/index.ts';

/** `msg_` + 24 random base64url characters, the shape Anthropic's ids have. */
export function newMessageId(): string {
  return `msg_${randomBytes(18).toString('base64url')}`;
}

/**
 * Arguments must be a JSON object to become `input`. Anything else is an
 * upstream fault: handing a client a tool call with made-up input could make
 * it act on arguments the model never gave, so the attempt fails (retryable).
 */
export function toolInput(call: ToolCall): Record<string, unknown> {
  const input = toolInputOf(call.function.arguments);
  if (input !== undefined) return input;
  throw new GatewayError(
    'upstream_bad_response',
    `Upstream returned arguments for tool '${call.function.name}' that are not a JSON object`,
  );
}

function contentBlocks(choice: ChatChoice | undefined): ContentBlock[] {
  const blocks: ContentBlock[] = [];
  const text = choice?.message.content;
  if (typeof text === 'string' && text.length > 0) blocks.push({ type: 'text', text });
  for (const call of choice?.message.tool_calls ?? []) {
    blocks.push({ type: 'tool_use', id: call.id, name: call.function.name, input: toolInput(call) });
  }
  return blocks;
}

export interface ResponseContext {
  /** The model name the client asked for. */
  model: string;
  stopSequences?: readonly string[] | undefined;
  id?: string;
}

export function toAnthropicMessage(completion: ChatCompletion, context: ResponseContext): AnthropicMessage {
  const choice = completion.choices[0];
  const stop = toStopInfo(choice?.finish_reason, choice?.['stop_reason'], context.stopSequences);
  return {
    id: context.id ?? newMessageId(),
    type: 'message',
    role: 'assistant',
    content: contentBlocks(choice),
    model: context.model,
    stop_reason: stop.stop_reason,
    stop_sequence: stop.stop_sequence,
    usage: fromCanonicalUsage(completion.usage),
  };
}
