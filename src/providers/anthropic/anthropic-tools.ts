/**
 * Anthropic `tool_use` blocks ⇄ canonical tool calls. Anthropic carries the
 * input as a JSON object, Chat Completions as a string of JSON arguments; the
 * rule for that is shared with every adapter (core/tool-calls.ts).
 */
import { toolCallOf } from '../../core/tool-calls.ts';
import type { ToolCall } from '../../core/types.ts';

export function toToolCall(block: { id: string; name: string; input: unknown }): ToolCall {
  return toolCallOf(block.id, block.name, block.input);
}
