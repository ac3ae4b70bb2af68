/**
 * Anthropic tools ⇄ canonical tools, both directions in one place: the
 * outbound adapter (canonical → Anthropic, and the tool calls of an answer
 * back) and the inbound `/v1/messages` API (an Anthropic client's tools and
 * past tool calls → canonical) read the same rules.
 *
 * - `tool_use` blocks ⇄ tool calls: Anthropic carries the input as a JSON
 *   object, Chat Completions as a string of JSON arguments; the rule for that
 *   is shared with every adapter (core/tool-calls.ts).
 * - tool definitions: `input_schema` ⇄ `function.parameters`.
 * - `tool_choice`: one table of modes read both ways, a named tool either
 *   side, and Anthropic's `disable_parallel_tool_use` ⇄ `parallel_tool_calls: false`.
 *
 * Which tools a direction cannot carry (server tools to a non-Anthropic
 * target, non-function tools to Anthropic) is refused by its caller, which
 * knows what to tell the client.
 */
import { GatewayError } from '../../core/errors.ts';
import { toolCallOf } from '../../core/tool-calls.ts';
import type { ChatRequest, ToolCall } from '../../core/types.ts';
import type { ToolChoice, ToolParam } from './anthropic-wire.ts';

/** An Anthropic `tool_use` block → the canonical tool call. */
export function fromAnthropicToolUse(block: { id: string; name: string; input: unknown }): ToolCall {
  return toolCallOf(block.id, block.name, block.input);
}

type FunctionTool = NonNullable<ChatRequest['tools']>[number];

/** An Anthropic client tool (not a server tool: the caller refuses those) → a canonical function tool. */
export function fromAnthropicTool(tool: ToolParam): FunctionTool {
  const fn: FunctionTool['function'] = { name: tool.name, parameters: tool.input_schema };
  if (typeof tool.description === 'string') fn.description = tool.description;
  return { type: 'function', function: fn };
}

/** A canonical function tool → Anthropic's; a function without parameters takes an empty object. */
export function toAnthropicTool(tool: FunctionTool, i: number): ToolParam {
  if (tool?.type !== 'function' || typeof tool.function?.name !== 'string') {
    throw invalid('Only function tools can be sent to an Anthropic model', `tools[${i}]`);
  }
  const out: ToolParam = {
    name: tool.function.name,
    input_schema: (tool.function.parameters as ToolParam['input_schema'] | undefined) ?? {
      type: 'object',
      properties: {},
    },
  };
  if (typeof tool.function.description === 'string') out.description = tool.function.description;
  return out;
}

type ChoiceType = Exclude<ToolChoice['type'], 'tool'>;

/** Anthropic's `tool_choice` types and the canonical mode each is. */
const CHOICE_MODES: ReadonlyArray<readonly [ChoiceType, string]> = [
  ['auto', 'auto'],
  ['any', 'required'],
  ['none', 'none'],
];
const MODE_OF_TYPE = new Map<string, string>(CHOICE_MODES);
const TYPE_OF_MODE = new Map<unknown, ChoiceType>(CHOICE_MODES.map(([type, mode]) => [mode, type]));

/** An Anthropic `tool_choice` → the canonical `tool_choice`, with `parallel_tool_calls: false` when it disables them. */
export function fromAnthropicToolChoice(choice: ToolChoice): {
  tool_choice: unknown;
  parallel_tool_calls?: false;
} {
  const out: { tool_choice: unknown; parallel_tool_calls?: false } = {
    tool_choice:
      choice.type === 'tool'
        ? { type: 'function', function: { name: choice.name } }
        : MODE_OF_TYPE.get(choice.type),
  };
  if (choice.type !== 'none' && choice.disable_parallel_tool_use === true) out.parallel_tool_calls = false;
  return out;
}

/**
 * The canonical `tool_choice` and `parallel_tool_calls` → Anthropic's
 * `tool_choice`; undefined when neither says anything. `none` has no
 * parallel setting; `parallel_tool_calls: false` alone means `auto` without
 * parallel calls.
 */
export function toAnthropicToolChoice(choice: unknown, parallel: unknown): ToolChoice | undefined {
  const noParallel = parallel === false;
  let out: Exclude<ToolChoice, { type: 'none' }> | undefined;
  const type = TYPE_OF_MODE.get(choice);
  if (type === 'none') return { type: 'none' };
  if (type !== undefined) out = { type };
  else if (choice && typeof choice === 'object') {
    const name = (choice as { function?: { name?: unknown } }).function?.name;
    if (typeof name !== 'string') throw invalid('tool_choice must name a function', 'tool_choice');
    out = { type: 'tool', name };
  } else if (choice !== undefined && choice !== null) {
    throw invalid("tool_choice must be 'auto', 'none', 'required' or a named function", 'tool_choice');
  }
  if (noParallel) return { ...(out ?? { type: 'auto' }), disable_parallel_tool_use: true };
  return out;
}

function invalid(message: string, param: string): GatewayError {
  return new GatewayError('invalid_request', message, { param });
}
