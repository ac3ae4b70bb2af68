/**
 * Inbound: a Responses API request → the canonical ChatRequest (OpenAI Chat
 * Completions), which every provider adapter takes. Expects a body that
 * passed `validateResponsesRequest`.
 *
 * A conversation is a list of items (messages, function calls, function call
 * outputs); `history` is the items of the `previous_response_id` chain (its
 * inputs and outputs, oldest first), so a conversation begun on one provider
 * continues on another: the items are provider-neutral, and only the
 * canonical messages built from them reach an upstream.
 */
import type {
  ChatMessage,
  ChatRequest,
  ContentPart,
  ImagePart,
  JsonObject,
  TextPart,
} from '../../core/types.ts';
import { newItemId } from './responses-ids.ts';
import type {
  FunctionCallOutputItem,
  InputImagePart,
  InputItem,
  MessageContentPart,
  MessageItem,
  ResponsesRequest,
  TextFormat,
} from './responses-wire.ts';

/**
 * The request's `input` as the items it stands for, each with an id (as
 * OpenAI's `input_items` lists them): a string is one user message.
 */
export function inputItems(input: ResponsesRequest['input']): InputItem[] {
  if (typeof input === 'string') {
    return [
      { type: 'message', id: newItemId('msg'), role: 'user', content: [{ type: 'input_text', text: input }] },
    ];
  }
  return input.flatMap((item): InputItem[] => {
    const typed = { ...item, type: item.type ?? 'message' } as InputItem;
    // Reasoning items of another model's answer are not part of a conversation any provider can read.
    if ((typed.type as string) === 'reasoning') return [];
    if (typed.id === undefined || typed.id === null) typed.id = newItemId(ID_PREFIX[typed.type]);
    return [typed];
  });
}

const ID_PREFIX: Record<InputItem['type'], string> = {
  message: 'msg',
  function_call: 'fc',
  function_call_output: 'fco',
};

function imagePart(part: InputImagePart): ImagePart {
  const image: ImagePart['image_url'] = { url: part.image_url ?? '' };
  if (part.detail !== undefined) image.detail = part.detail;
  return { type: 'image_url', image_url: image };
}

function partText(part: MessageContentPart): string | undefined {
  if (part.type === 'input_text' || part.type === 'output_text') return part.text;
  if (part.type === 'refusal') return part.refusal;
  return undefined;
}

/** A user, system or developer message: text parts and images; a lone text is a plain string. */
function clientMessage(item: MessageItem): ChatMessage {
  const role = item.role === 'assistant' ? 'user' : item.role;
  if (typeof item.content === 'string') return { role, content: item.content };
  const parts: ContentPart[] = item.content.map((part): TextPart | ImagePart =>
    part.type === 'input_image' ? imagePart(part) : { type: 'text', text: partText(part) ?? '' },
  );
  const only = parts.length === 1 ? parts[0] : undefined;
  return { role, content: only?.type === 'text' ? (only as TextPart).text : parts };
}

function assistantText(item: MessageItem): string {
  if (typeof item.content === 'string') return item.content;
  return item.content.map((part) => partText(part) ?? '').join('');
}

/** A function call output's text; its images go to a user turn after the tool results. */
function toolMessage(item: FunctionCallOutputItem, images: ImagePart[]): ChatMessage {
  if (typeof item.output === 'string')
    return { role: 'tool', tool_call_id: item.call_id, content: item.output };
  const texts: string[] = [];
  for (const part of item.output) {
    if (part.type === 'input_image') images.push(imagePart(part));
    else texts.push(part.text);
  }
  return { role: 'tool', tool_call_id: item.call_id, content: texts.join('\n') };
}

/**
 * Items → canonical messages. An assistant message and the function calls
 * after it are one assistant turn (Chat Completions carries tool calls on
 * the assistant message, and every provider wants them in one turn).
 */
export function itemsToMessages(items: readonly InputItem[]): ChatMessage[] {
  const out: ChatMessage[] = [];
  let images: ImagePart[] = [];
  /** The assistant turn function calls join, while nothing else came after it. */
  let assistant: ChatMessage | undefined;
  const flushImages = (): void => {
    if (images.length === 0) return;
    out.push({ role: 'user', content: images });
    images = [];
  };
  for (const item of items) {
    switch (item.type) {
      case 'message':
        flushImages();
        if (item.role === 'assistant') {
          const text = assistantText(item);
          if (assistant !== undefined && (assistant.tool_calls?.length ?? 0) === 0) {
            assistant.content = `${(assistant.content as string | null) ?? ''}${text}`;
          } else {
            assistant = { role: 'assistant', content: text };
            out.push(assistant);
          }
        } else {
          assistant = undefined;
          out.push(clientMessage(item));
        }
        break;
      case 'function_call': {
        flushImages();
        if (assistant === undefined) {
          assistant = { role: 'assistant', content: null };
          out.push(assistant);
        }
        const call = {
          id: item.call_id,
          type: 'function' as const,
          function: { name: item.name, arguments: item.arguments },
        };
        assistant.tool_calls = [...(assistant.tool_calls ?? []), call];
        break;
      }
      case 'function_call_output':
        assistant = undefined;
        out.push(toolMessage(item, images));
        break;
    }
  }
  flushImages();
  return out;
}

function responseFormat(format: TextFormat | undefined): JsonObject | undefined {
  if (format === undefined || format.type === 'text') return undefined;
  if (format.type === 'json_object') return { type: 'json_object' };
  const schema: JsonObject = { name: format.name, schema: format.schema };
  if (format.description !== undefined) schema['description'] = format.description;
  if (format.strict !== undefined && format.strict !== null) schema['strict'] = format.strict;
  return { type: 'json_schema', json_schema: schema };
}

/**
 * The canonical request: `instructions` first (as a system message; they
 * are this request's own, never carried over from the previous response, as
 * OpenAI documents), then the history, then this request's input.
 */
export function toChatRequest(
  body: ResponsesRequest,
  history: readonly InputItem[],
  input: readonly InputItem[],
): ChatRequest {
  const messages = itemsToMessages([...history, ...input]);
  if (typeof body.instructions === 'string' && body.instructions.length > 0) {
    messages.unshift({ role: 'system', content: body.instructions });
  }
  const chat: ChatRequest = { model: body.model, messages };
  if (body.stream === true) chat.stream = true;
  if (body.max_output_tokens !== undefined && body.max_output_tokens !== null) {
    chat.max_completion_tokens = body.max_output_tokens;
  }
  if (body.temperature !== undefined && body.temperature !== null) chat.temperature = body.temperature;
  if (body.top_p !== undefined && body.top_p !== null) chat.top_p = body.top_p;
  const user = body.user ?? body.safety_identifier;
  if (user !== undefined) chat.user = user;
  if (body.tools !== undefined && body.tools.length > 0) {
    chat.tools = body.tools.map((tool) => {
      const fn: { name: string; description?: string; parameters?: JsonObject; strict?: boolean } = {
        name: tool.name,
      };
      if (typeof tool.description === 'string') fn.description = tool.description;
      if (tool.parameters !== undefined && tool.parameters !== null) fn.parameters = tool.parameters;
      if (typeof tool.strict === 'boolean') fn.strict = tool.strict;
      return { type: 'function', function: fn };
    });
    // Chat Completions refuses tool_choice and parallel_tool_calls without tools.
    const choice = body.tool_choice;
    if (choice !== undefined && choice !== null) {
      chat.tool_choice =
        typeof choice === 'string' ? choice : { type: 'function', function: { name: choice.name } };
    }
    if (typeof body.parallel_tool_calls === 'boolean') chat['parallel_tool_calls'] = body.parallel_tool_calls;
  }
  const format = responseFormat(body.text?.format);
  if (format !== undefined) chat['response_format'] = format;
  const effort = body.reasoning?.effort;
  if (typeof effort === 'string') chat['reasoning_effort'] = effort;
  if (typeof body.service_tier === 'string') chat['service_tier'] = body.service_tier;
  return chat;
}
