/**
 * Anthropic `tool_use` blocks ⇄ canonical tool calls, both directions in one
 * place: Anthropic carries the input as a JSON object, Chat Completions as a
 * string of JSON arguments.
 */
import type { ToolCall } from '../../core/types.ts';

export function toToolCall(block: { id: string; name: string; input: unknown }): ToolCall {
  return {
    id: block.id,
    type: 'function',
    function: { name: block.name, arguments: JSON.stringify(block.input ?? {}) },
  };
}

/**
 * The `input` for a tool call's arguments: a JSON object (`{}` for none), or
 * undefined when they are not one; whose fault that is, the caller says.
 */
export function toolInputOf(argumentsText: string | undefined): Record<string, unknown> | undefined {
  if (argumentsText === undefined || argumentsText.trim() === '') return {};
  try {
    const value: unknown = JSON.parse(argumentsText);
    if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
      return value as Record<string, unknown>;
    }
  } catch {
    // Not JSON: reported by the caller.
  }
  return undefined;
}
