/**
 * Tool calls between the canonical shape (arguments as a string of JSON) and
 * providers that carry them as a JSON object (Anthropic `tool_use.input`,
 * Gemini `functionCall.args`): one rule for both directions, for every adapter.
 *
 * This module imports nothing of ours but the canonical types.
 */
import type { ToolCall } from './types.ts';

/** A canonical tool call from a provider's id, name and object of arguments. */
export function toolCallOf(id: string, name: string, input: unknown): ToolCall {
  return { id, type: 'function', function: { name, arguments: JSON.stringify(input ?? {}) } };
}

/**
 * The object of a tool call's arguments: a JSON object (`{}` for none), or
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
