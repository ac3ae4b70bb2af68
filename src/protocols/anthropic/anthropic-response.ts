/**
 * Canonical ChatCompletion → Anthropic Message, and the pieces the stream
 * translator shares with it (stop reasons, usage, message ids).
 */
import { randomBytes } from 'node:crypto';
import { GatewayError } from '../../core/errors.ts';
import type { ChatChoice, ChatCompletion, FinishReason, ToolCall, Usage } from '../../core/types.ts';
import type { AnthropicMessage, AnthropicUsage, ContentBlock, StopReason } from './anthropic-wire.ts';

/** `msg_` + 24 random base64url characters, the shape Anthropic's ids have. */
export function newMessageId(): string {
  return `msg_${randomBytes(18).toString('base64url')}`;
}

export interface StopInfo {
  stop_reason: StopReason;
  stop_sequence: string | null;
}

/**
 * Chat Completions says only `stop`; which stop sequence ended the text is
 * knowable when an OpenAI-compatible server reports it (vLLM's `stop_reason`
 * holds the matched string).
 */
export function stopInfo(
  finish: FinishReason | null | undefined,
  matched: unknown,
  stopSequences: readonly string[] | undefined,
): StopInfo {
  switch (finish) {
    case 'length':
      return { stop_reason: 'max_tokens', stop_sequence: null };
    case 'tool_calls':
    case 'function_call':
      return { stop_reason: 'tool_use', stop_sequence: null };
    case 'content_filter':
      return { stop_reason: 'refusal', stop_sequence: null };
    default:
      if (typeof matched === 'string' && stopSequences?.includes(matched)) {
        return { stop_reason: 'stop_sequence', stop_sequence: matched };
      }
      return { stop_reason: 'end_turn', stop_sequence: null };
  }
}

/** Anthropic counts cache reads apart from `input_tokens`; OpenAI's `prompt_tokens` includes them. */
export function anthropicUsage(usage: Usage | undefined | null): AnthropicUsage {
  const cached = usage?.prompt_tokens_details?.cached_tokens ?? 0;
  return {
    input_tokens: Math.max(0, (usage?.prompt_tokens ?? 0) - cached),
    output_tokens: usage?.completion_tokens ?? 0,
    // Chat Completions reports no cache writes.
    cache_creation_input_tokens: 0,
    cache_read_input_tokens: cached,
  };
}

/**
 * Arguments must be a JSON object to become `input`. Anything else is an
 * upstream fault: handing a client a tool call with made-up input could make
 * it act on arguments the model never gave, so the attempt fails (retryable).
 */
export function toolInput(call: ToolCall): Record<string, unknown> {
  const text = call.function.arguments;
  if (text === undefined || text.trim() === '') return {};
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    value = undefined;
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new GatewayError(
      'upstream_bad_response',
      `Upstream returned arguments for tool '${call.function.name}' that are not a JSON object`,
    );
  }
  return value as Record<string, unknown>;
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
  const stop = stopInfo(choice?.finish_reason, choice?.['stop_reason'], context.stopSequences);
  return {
    id: context.id ?? newMessageId(),
    type: 'message',
    role: 'assistant',
    content: contentBlocks(choice),
    model: context.model,
    stop_reason: stop.stop_reason,
    stop_sequence: stop.stop_sequence,
    usage: anthropicUsage(completion.usage),
  };
}
