/**
 * Outbound: canonical (OpenAI Chat Completions) request → the Anthropic
 * Messages request sent upstream. (Inbound, an Anthropic client's request →
 * canonical, is src/api/anthropic/anthropic-inbound-request.ts.)
 *
 * Anthropic keeps the system prompt outside the turns, wants tool calls and
 * tool results as content blocks, and requires `max_tokens`. Everything the
 * canonical request means is carried over; canonical fields with no Anthropic
 * equivalent (n=1, penalties, logprobs, seed, response_format...) are dropped
 * rather than sent, because Anthropic rejects unknown fields. Input that
 * cannot be translated faithfully is refused with a 400 naming the field.
 */
import { GatewayError } from '../../core/errors.ts';
import { toolInputOf } from '../../core/tool-calls.ts';
import type { ChatMessage, ChatRequest, ContentPart, JsonObject } from '../../core/types.ts';
import { toAnthropicTool, toAnthropicToolChoice } from './anthropic-tools.ts';
import type {
  ContentBlockParam,
  ImageBlockParam,
  ImageMediaType,
  MessageParam,
  MessagesRequest,
  TextBlockParam,
  ThinkingConfig,
  ToolResultBlockParam,
} from './anthropic-wire.ts';

export interface AnthropicRequestOptions {
  /** Sent when the client gives neither `max_tokens` nor `max_completion_tokens`. */
  defaultMaxTokens: number;
}

/** Thinking budgets for OpenAI's `reasoning_effort`; Anthropic's minimum budget is 1024. */
const THINKING_BUDGETS: Record<string, number> = {
  minimal: 1024,
  low: 2048,
  medium: 8192,
  high: 16_384,
};
const MIN_THINKING_BUDGET = 1024;

export function toAnthropicRequest(request: ChatRequest, options: AnthropicRequestOptions): MessagesRequest {
  if (typeof request.n === 'number' && request.n > 1) {
    throw invalid('Anthropic models return one choice per request; n must be 1', 'n');
  }
  const { system, messages } = translateMessages(request.messages);
  const explicitMax = request.max_completion_tokens ?? request.max_tokens;
  let maxTokens = typeof explicitMax === 'number' ? explicitMax : options.defaultMaxTokens;
  const out: MessagesRequest = { model: request.model, messages, max_tokens: maxTokens };
  if (system !== undefined) out.system = system;

  const stop = request.stop;
  if (typeof stop === 'string') out.stop_sequences = [stop];
  else if (Array.isArray(stop) && stop.length > 0) out.stop_sequences = stop;
  if (typeof request.temperature === 'number') out.temperature = request.temperature;
  if (typeof request.top_p === 'number') out.top_p = request.top_p;
  if (typeof request['top_k'] === 'number') out.top_k = request['top_k'];
  if (typeof request.user === 'string' && request.user.length > 0) out.metadata = { user_id: request.user };

  if (Array.isArray(request.tools) && request.tools.length > 0) {
    out.tools = request.tools.map(toAnthropicTool);
    const choice = toAnthropicToolChoice(request.tool_choice, request['parallel_tool_calls']);
    if (choice) out.tool_choice = choice;
  }

  const thinking = translateThinking(request, maxTokens, typeof explicitMax === 'number');
  if (thinking) {
    out.thinking = thinking.config;
    maxTokens = thinking.maxTokens;
    out.max_tokens = maxTokens;
  }
  return out;
}

// ---- messages ----------------------------------------------------------------------

function translateMessages(input: ChatMessage[]): {
  system: string | TextBlockParam[] | undefined;
  messages: MessageParam[];
} {
  const systemTexts: string[] = [];
  const messages: MessageParam[] = [];
  input.forEach((message, i) => {
    const where = `messages[${i}]`;
    switch (message.role) {
      case 'system':
      case 'developer': {
        const text = textOnly(message.content, where);
        if (text.length > 0) systemTexts.push(text);
        return;
      }
      case 'user':
        append(messages, 'user', userBlocks(message.content, where));
        return;
      case 'assistant':
        append(messages, 'assistant', assistantBlocks(message, where));
        return;
      case 'tool':
        append(messages, 'user', [toolResultBlock(message, where)]);
        return;
      default:
        throw invalid(
          `Role '${String(message.role)}' cannot be sent to an Anthropic model; use 'tool' messages with tool_call_id`,
          `${where}.role`,
        );
    }
  });
  if (messages.length === 0) {
    throw invalid('Anthropic models need at least one user or assistant message', 'messages');
  }
  let system: string | TextBlockParam[] | undefined;
  if (systemTexts.length === 1) system = systemTexts[0];
  else if (systemTexts.length > 1) system = systemTexts.map((text) => ({ type: 'text', text }));
  return { system, messages };
}

/** Anthropic merges consecutive same-role turns anyway; merging here keeps tool results in one user turn. */
function append(messages: MessageParam[], role: 'user' | 'assistant', blocks: ContentBlockParam[]) {
  const last = messages[messages.length - 1];
  if (last && last.role === role) {
    last.content = [...asBlocks(last.content), ...blocks];
    return;
  }
  // A lone text turn stays a plain string: the smallest faithful request.
  const only = blocks.length === 1 ? blocks[0] : undefined;
  if (only?.type === 'text' && only.cache_control === undefined) {
    messages.push({ role, content: only.text });
  } else {
    messages.push({ role, content: blocks });
  }
}

function asBlocks(content: string | ContentBlockParam[]): ContentBlockParam[] {
  return typeof content === 'string' ? [{ type: 'text', text: content }] : content;
}

function userBlocks(content: ChatMessage['content'], where: string): ContentBlockParam[] {
  if (typeof content === 'string') return [{ type: 'text', text: content }];
  if (!Array.isArray(content)) throw invalid('A user message needs content', `${where}.content`);
  return content.map((part, j) => contentPartBlock(part, `${where}.content[${j}]`));
}

function contentPartBlock(part: ContentPart, where: string): TextBlockParam | ImageBlockParam {
  if (part.type === 'text' && typeof part['text'] === 'string') {
    const block: TextBlockParam = { type: 'text', text: part['text'] };
    copyCacheControl(part, block);
    return block;
  }
  if (part.type === 'image_url') {
    const imageUrl = part['image_url'] as { url?: unknown } | undefined;
    if (typeof imageUrl?.url !== 'string') throw invalid('image_url.url must be a string', where);
    const block = imageBlock(imageUrl.url, where);
    copyCacheControl(part, block);
    return block;
  }
  throw invalid(`Content part type '${String(part.type)}' cannot be sent to an Anthropic model`, where);
}

const DATA_URL = /^data:([^;,]+);base64,(.*)$/s;
const IMAGE_MEDIA_TYPES: ReadonlySet<string> = new Set<ImageMediaType>([
  'image/jpeg',
  'image/png',
  'image/gif',
  'image/webp',
]);

function imageBlock(url: string, where: string): ImageBlockParam {
  const data = DATA_URL.exec(url);
  if (data) {
    const mediaType = data[1]!;
    if (!IMAGE_MEDIA_TYPES.has(mediaType)) {
      throw invalid(
        `Anthropic models accept JPEG, PNG, GIF and WebP images, not '${mediaType}'`,
        `${where}.image_url.url`,
      );
    }
    return {
      type: 'image',
      source: { type: 'base64', media_type: mediaType as ImageMediaType, data: data[2]! },
    };
  }
  if (/^https?:\/\//i.test(url)) return { type: 'image', source: { type: 'url', url } };
  throw invalid('An image must be a base64 data: URL or an http(s) URL', `${where}.image_url.url`);
}

/** Prompt caching markers (an Anthropic extension some OpenAI clients send) survive the trip. */
function copyCacheControl(part: ContentPart, block: TextBlockParam | ImageBlockParam): void {
  const cache = (part as JsonObject)['cache_control'];
  if (cache && typeof cache === 'object') block.cache_control = cache as TextBlockParam['cache_control'];
}

function assistantBlocks(message: ChatMessage, where: string): ContentBlockParam[] {
  const blocks: ContentBlockParam[] = [];
  // Thinking blocks must be sent back unchanged (signature included) when tools are in play.
  const thinking = message['thinking_blocks'];
  if (Array.isArray(thinking)) {
    for (const block of thinking as JsonObject[]) {
      if (block?.['type'] === 'thinking' || block?.['type'] === 'redacted_thinking') {
        blocks.push(block as unknown as ContentBlockParam);
      }
    }
  }
  const text = textOnly(message.content, `${where}.content`);
  // Anthropic rejects empty text blocks; an assistant turn with only tool calls has none.
  if (text.length > 0) blocks.push({ type: 'text', text });
  message.tool_calls?.forEach((call, k) => {
    blocks.push({
      type: 'tool_use',
      id: call.id,
      name: call.function.name,
      input: parseArguments(call.function.arguments, `${where}.tool_calls[${k}].function.arguments`),
    });
  });
  if (blocks.length === 0) blocks.push({ type: 'text', text: '' });
  return blocks;
}

function parseArguments(text: string, where: string): Record<string, unknown> {
  const input = toolInputOf(text);
  if (input !== undefined) return input;
  throw invalid('Tool call arguments must be a JSON object to be sent to an Anthropic model', where);
}

function toolResultBlock(message: ChatMessage, where: string): ToolResultBlockParam {
  if (typeof message.tool_call_id !== 'string' || message.tool_call_id === '') {
    throw invalid('A tool message needs tool_call_id', `${where}.tool_call_id`);
  }
  const content = message.content;
  const block: ToolResultBlockParam = { type: 'tool_result', tool_use_id: message.tool_call_id };
  if (typeof content === 'string') block.content = content;
  else if (Array.isArray(content)) {
    block.content = content.map((part, j) => contentPartBlock(part, `${where}.content[${j}]`));
  }
  return block;
}

/** System and assistant content: a string, or text parts joined. */
function textOnly(content: ChatMessage['content'], where: string): string {
  if (typeof content === 'string') return content;
  if (content === null || content === undefined) return '';
  let out = '';
  content.forEach((part, j) => {
    if (part.type !== 'text' || typeof part['text'] !== 'string') {
      throw invalid(`Only text content is allowed here, got '${String(part.type)}'`, `${where}[${j}]`);
    }
    out += part['text'];
  });
  return out;
}

// ---- extended thinking ---------------------------------------------------------------

function translateThinking(
  request: ChatRequest,
  maxTokens: number,
  maxIsExplicit: boolean,
): { config: ThinkingConfig; maxTokens: number } | undefined {
  const native = request['thinking'];
  let budget: number | undefined;
  if (native && typeof native === 'object') {
    const config = native as { type?: unknown; budget_tokens?: unknown };
    if (config.type === 'disabled') return { config: { type: 'disabled' }, maxTokens };
    if (config.type === 'enabled' && typeof config.budget_tokens === 'number') budget = config.budget_tokens;
    else throw invalid("thinking must be {type:'enabled', budget_tokens} or {type:'disabled'}", 'thinking');
  } else if (typeof request['reasoning_effort'] === 'string') {
    const effort = request['reasoning_effort'];
    if (effort === 'none') return undefined;
    budget = THINKING_BUDGETS[effort];
    if (budget === undefined) throw invalid(`Unknown reasoning_effort '${effort}'`, 'reasoning_effort');
  }
  if (budget === undefined) return undefined;
  // Anthropic requires budget < max_tokens: the answer needs room after the thinking.
  if (!maxIsExplicit)
    return { config: { type: 'enabled', budget_tokens: budget }, maxTokens: budget + maxTokens };
  if (budget >= maxTokens) budget = maxTokens - 1;
  if (budget < MIN_THINKING_BUDGET) {
    throw invalid(
      `Extended thinking needs max_tokens above ${MIN_THINKING_BUDGET}; got ${maxTokens}`,
      'max_tokens',
    );
  }
  return { config: { type: 'enabled', budget_tokens: budget }, maxTokens };
}

function invalid(message: string, param: string): GatewayError {
  return new GatewayError('invalid_request', message, { param });
}
