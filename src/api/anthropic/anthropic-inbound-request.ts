/**
 * Inbound: an Anthropic client's Messages request → canonical ChatRequest
 * (OpenAI Chat Completions), for targets that do not speak Anthropic. Expects
 * a body that passed `validateMessagesRequest`. (Outbound, canonical →
 * Anthropic for an Anthropic target, is src/providers/anthropic/anthropic-request.ts.)
 *
 * What has no canonical equivalent is refused with a 400 naming the field
 * (documents, server tools, file-id images) rather than silently dropped, with
 * two deliberate exceptions: thinking blocks in past assistant turns (only
 * meaningful to Anthropic models) are dropped, and `top_k` and `thinking` are
 * returned aside in `anthropicOnly`, for a target that can use them.
 */
import { GatewayError } from '../../core/errors.ts';
import type {
  ChatMessage,
  ChatRequest,
  ContentPart,
  ImagePart,
  TextPart,
  ToolCall,
} from '../../core/types.ts';
import {
  type ContentBlockParam,
  type CountTokensRequest,
  fromAnthropicTool,
  fromAnthropicToolChoice,
  fromAnthropicToolUse,
  type ImageBlockParam,
  type MessageParam,
  type MessagesRequest,
  type TextBlockParam,
  type ThinkingConfig,
  type ToolParam,
  type ToolResultBlockParam,
} from '../../providers/anthropic/index.ts';

export interface TranslatedRequest {
  chat: ChatRequest;
  /** Anthropic parameters the canonical request cannot carry; kept for Anthropic-aware targets. */
  anthropicOnly: { top_k?: number; thinking?: ThinkingConfig };
}

function unsupported(param: string, what: string): never {
  throw new GatewayError(
    'invalid_request',
    `${param}: ${what} is only supported when the model's provider is Anthropic`,
    { param },
  );
}

function imagePart(block: ImageBlockParam, path: string): ImagePart {
  const source = block.source;
  if (source.type === 'base64') {
    return { type: 'image_url', image_url: { url: `data:${source.media_type};base64,${source.data}` } };
  }
  if (source.type === 'url') return { type: 'image_url', image_url: { url: source.url } };
  return unsupported(`${path}.source`, 'an image given by file_id');
}

function textOf(blocks: TextBlockParam[]): string {
  return blocks.map((b) => b.text).join('\n');
}

function systemMessage(system: MessagesRequest['system']): ChatMessage | undefined {
  if (system === undefined) return undefined;
  if (typeof system === 'string') return system.length > 0 ? { role: 'system', content: system } : undefined;
  if (system.length === 0) return undefined;
  // Separate blocks stay separate parts, so nothing is lost in joining.
  const parts = system.map((b): ContentPart => ({ type: 'text', text: b.text }));
  return { role: 'system', content: parts.length === 1 ? system[0]!.text : parts };
}

/** A tool_result becomes a `tool` message; its images go to the user turn that follows. */
function toolResult(
  block: ToolResultBlockParam,
  path: string,
  images: Array<TextPart | ImagePart>,
): ChatMessage {
  let text: string;
  if (typeof block.content === 'string') text = block.content;
  else if (Array.isArray(block.content)) {
    const texts: TextBlockParam[] = [];
    block.content.forEach((inner, k) => {
      if (inner.type === 'text') texts.push(inner);
      else images.push(imagePart(inner, `${path}.content[${k}]`));
    });
    text = textOf(texts);
  } else text = '';
  // Chat Completions has no error flag on tool results; the model must still learn the call failed.
  if (block.is_error === true) text = `Error: ${text}`;
  return { role: 'tool', tool_call_id: block.tool_use_id, content: text };
}

function userMessages(blocks: ContentBlockParam[], path: string): ChatMessage[] {
  const out: ChatMessage[] = [];
  const parts: Array<TextPart | ImagePart> = [];
  blocks.forEach((block, j) => {
    const blockPath = `${path}[${j}]`;
    switch (block.type) {
      case 'text':
        parts.push({ type: 'text', text: block.text });
        break;
      case 'image':
        parts.push(imagePart(block, blockPath));
        break;
      case 'tool_result':
        // Tool messages must directly follow the assistant's tool calls, so they go first.
        out.push(toolResult(block, blockPath, parts));
        break;
      default:
        unsupported(`${blockPath}.type`, `a '${block.type}' block`);
    }
  });
  if (parts.length > 0) {
    // A lone text block is sent as a plain string, the form every OpenAI-compatible server accepts.
    const only = parts.length === 1 ? parts[0] : undefined;
    out.push({ role: 'user', content: only?.type === 'text' ? only.text : parts });
  }
  return out;
}

function assistantMessage(blocks: ContentBlockParam[], path: string): ChatMessage | undefined {
  const texts: string[] = [];
  const toolCalls: ToolCall[] = [];
  blocks.forEach((block, j) => {
    switch (block.type) {
      case 'text':
        texts.push(block.text);
        break;
      case 'tool_use':
        toolCalls.push(fromAnthropicToolUse(block));
        break;
      case 'thinking':
      case 'redacted_thinking':
        // Signed reasoning of an Anthropic model; meaningless (and unverifiable) to another one.
        break;
      default:
        unsupported(`${path}[${j}].type`, `a '${block.type}' block`);
    }
  });
  if (texts.length === 0 && toolCalls.length === 0) return undefined;
  const message: ChatMessage = { role: 'assistant', content: texts.length > 0 ? texts.join('') : null };
  if (toolCalls.length > 0) message.tool_calls = toolCalls;
  return message;
}

function chatMessages(messages: MessageParam[]): ChatMessage[] {
  const out: ChatMessage[] = [];
  messages.forEach((message, i) => {
    const path = `messages[${i}].content`;
    if (typeof message.content === 'string') {
      out.push({ role: message.role, content: message.content });
      return;
    }
    if (message.role === 'user') out.push(...userMessages(message.content, path));
    else {
      const assistant = assistantMessage(message.content, path);
      if (assistant) out.push(assistant);
    }
  });
  return out;
}

/** Client tools only: a server tool runs at Anthropic, so only an Anthropic target can take it. */
function chatTools(tools: ToolParam[]): ChatRequest['tools'] {
  return tools.map((tool, i) => {
    if (tool.type !== undefined && tool.type !== null && tool.type !== 'custom') {
      unsupported(`tools[${i}].type`, `the server tool '${tool.type}'`);
    }
    return fromAnthropicTool(tool);
  });
}

/** The prompt alone (system, messages, tools): what count_tokens measures. */
export function fromAnthropicPrompt(body: CountTokensRequest): ChatRequest {
  const messages = chatMessages(body.messages);
  const system = systemMessage(body.system);
  const chat: ChatRequest = { model: body.model, messages: system ? [system, ...messages] : messages };
  if (body.tools !== undefined && body.tools.length > 0) chat.tools = chatTools(body.tools);
  return chat;
}

export function fromAnthropicRequest(body: MessagesRequest): TranslatedRequest {
  const chat = fromAnthropicPrompt(body);
  chat.max_tokens = body.max_tokens;
  if (body.stream === true) chat.stream = true;
  if (body.temperature !== undefined) chat.temperature = body.temperature;
  if (body.top_p !== undefined) chat.top_p = body.top_p;
  if (body.stop_sequences !== undefined && body.stop_sequences.length > 0) chat.stop = body.stop_sequences;
  if (typeof body.metadata?.user_id === 'string') chat.user = body.metadata.user_id;
  // OpenAI refuses tool_choice and parallel_tool_calls without tools; with none, they mean nothing.
  if (body.tool_choice !== undefined && chat.tools !== undefined) {
    Object.assign(chat, fromAnthropicToolChoice(body.tool_choice));
  }
  const anthropicOnly: TranslatedRequest['anthropicOnly'] = {};
  if (body.top_k !== undefined) anthropicOnly.top_k = body.top_k;
  if (body.thinking !== undefined) anthropicOnly.thinking = body.thinking;
  return { chat, anthropicOnly };
}

function plainText(content: string | ContentBlockParam[]): string {
  if (typeof content === 'string') return content;
  return content
    .map((block) => (block.type === 'text' ? block.text : ''))
    .filter((text) => text.length > 0)
    .join('\n');
}

/**
 * The request as the router and the usage estimator see it, for a body the
 * translation refuses (documents, server tools) and only an Anthropic target
 * can take: its text alone. Never sent anywhere.
 */
export function routingView(body: MessagesRequest): ChatRequest {
  const messages: ChatMessage[] = body.messages.map((m) => ({ role: m.role, content: plainText(m.content) }));
  const system = body.system === undefined ? '' : plainText(body.system);
  const view: ChatRequest = {
    model: body.model,
    messages: system.length > 0 ? [{ role: 'system', content: system }, ...messages] : messages,
    max_tokens: body.max_tokens,
  };
  if (body.stream === true) view.stream = true;
  return view;
}
