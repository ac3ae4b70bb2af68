/**
 * The built-in mock provider: deterministic answers with realistic shapes and
 * usage, so the gateway runs (and can be demonstrated, load-tested and
 * developed against) with no API key and no network.
 *
 * Answer: `reply` from config, or an echo of the last user message.
 * Usage: prompt tokens ≈ words in all messages + 3 per message (a stable
 * stand-in for a tokenizer); completion tokens = words in the answer, which is
 * also the number of content chunks a stream carries.
 */
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type {
  ChatCompletion,
  ChatCompletionChunk,
  ChatMessage,
  ChatRequest,
  EmbeddingRequest,
  EmbeddingResponse,
  Usage,
} from '../../core/types.ts';
import type { AttemptContext, ProviderAdapter } from '../types.ts';

export interface MockProviderOptions {
  name: string;
  latencyMs?: number;
  streamDelayMs?: number;
  reply?: string | undefined;
}

export class MockProvider implements ProviderAdapter {
  readonly name: string;
  readonly type: string = 'mock';
  readonly #latencyMs: number;
  readonly #streamDelayMs: number;
  readonly #reply: string | undefined;

  constructor(options: MockProviderOptions) {
    this.name = options.name;
    this.#latencyMs = options.latencyMs ?? 0;
    this.#streamDelayMs = options.streamDelayMs ?? 0;
    this.#reply = options.reply;
  }

  async chat(request: ChatRequest, ctx: AttemptContext): Promise<ChatCompletion> {
    if (this.#latencyMs > 0) await sleep(this.#latencyMs, undefined, { signal: ctx.signal });
    ctx.signal.throwIfAborted();
    const words = this.#answerWords(request);
    const toolCall = wantsToolCall(request);
    return {
      id: completionId(),
      object: 'chat.completion',
      created: Math.floor(Date.now() / 1000),
      model: request.model,
      choices: [
        {
          index: 0,
          message: toolCall
            ? { role: 'assistant', content: null, tool_calls: [toolCall] }
            : { role: 'assistant', content: words.join(' ') },
          finish_reason: toolCall ? 'tool_calls' : 'stop',
          logprobs: null,
        },
      ],
      usage: usage(request, toolCall ? 1 : words.length),
    };
  }

  async streamChat(request: ChatRequest, ctx: AttemptContext): Promise<AsyncIterable<ChatCompletionChunk>> {
    if (this.#latencyMs > 0) await sleep(this.#latencyMs, undefined, { signal: ctx.signal });
    ctx.signal.throwIfAborted();
    return this.#stream(request, ctx.signal);
  }

  async *#stream(request: ChatRequest, signal: AbortSignal): AsyncGenerator<ChatCompletionChunk> {
    const id = completionId();
    const created = Math.floor(Date.now() / 1000);
    const chunk = (choices: ChatCompletionChunk['choices'], extra: Partial<ChatCompletionChunk> = {}) =>
      ({
        id,
        object: 'chat.completion.chunk',
        created,
        model: request.model,
        choices,
        ...extra,
      }) as ChatCompletionChunk;
    yield chunk([{ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: null }]);
    const toolCall = wantsToolCall(request);
    const words = this.#answerWords(request);
    if (toolCall) {
      yield chunk([{ index: 0, delta: { tool_calls: [{ index: 0, ...toolCall }] }, finish_reason: null }]);
    } else {
      for (let i = 0; i < words.length; i++) {
        if (this.#streamDelayMs > 0) await sleep(this.#streamDelayMs, undefined, { signal });
        signal.throwIfAborted();
        const text = i === 0 ? words[i]! : ` ${words[i]}`;
        yield chunk([{ index: 0, delta: { content: text }, finish_reason: null }]);
      }
    }
    yield chunk([{ index: 0, delta: {}, finish_reason: toolCall ? 'tool_calls' : 'stop' }]);
    yield chunk([], { usage: usage(request, toolCall ? 1 : words.length) });
  }

  async embed(request: EmbeddingRequest, ctx: AttemptContext): Promise<EmbeddingResponse> {
    if (this.#latencyMs > 0) await sleep(this.#latencyMs, undefined, { signal: ctx.signal });
    const inputs = Array.isArray(request.input) ? request.input : [request.input];
    const dimensions = request.dimensions ?? 8;
    let tokens = 0;
    const data = inputs.map((input, index) => {
      const text = typeof input === 'string' ? input : JSON.stringify(input);
      tokens += countWords(text);
      return { object: 'embedding' as const, index, embedding: vectorFor(text, dimensions) };
    });
    return {
      object: 'list',
      data,
      model: request.model,
      usage: { prompt_tokens: tokens, total_tokens: tokens },
    };
  }

  async check(): Promise<void> {}

  async close(): Promise<void> {}

  #answerWords(request: ChatRequest): string[] {
    const text = this.#reply ?? `Mock reply to: ${lastUserText(request.messages) || '(empty)'}`;
    const words = text.split(/\s+/).filter(Boolean);
    const limit = request.max_completion_tokens ?? request.max_tokens;
    return typeof limit === 'number' && limit > 0 ? words.slice(0, limit) : words;
  }
}

function completionId(): string {
  return `chatcmpl-mock${randomBytes(9).toString('base64url')}`;
}

function wantsToolCall(request: ChatRequest) {
  const tool = request.tools?.[0];
  const last = request.messages.at(-1);
  if (!tool || request.tool_choice === 'none' || last?.role !== 'user') return undefined;
  return {
    id: `call_mock${randomBytes(6).toString('hex')}`,
    type: 'function' as const,
    function: { name: tool.function.name, arguments: '{"query":"mock"}' },
  };
}

function lastUserText(messages: ChatMessage[]): string {
  for (let i = messages.length - 1; i >= 0; i--) {
    const message = messages[i]!;
    if (message.role !== 'user') continue;
    if (typeof message.content === 'string') return message.content;
    if (Array.isArray(message.content)) {
      return message.content.map((p) => (p.type === 'text' ? String(p['text'] ?? '') : '')).join(' ');
    }
  }
  return '';
}

function countWords(text: string): number {
  let count = 0;
  for (const word of text.split(/\s+/)) if (word) count++;
  return count;
}

/** Prompt-token stand-in: words + 3 per message (OpenAI's per-message overhead). */
export function mockPromptTokens(messages: ChatMessage[]): number {
  let tokens = 0;
  for (const message of messages) {
    tokens += 3;
    if (typeof message.content === 'string') tokens += countWords(message.content);
    else if (Array.isArray(message.content)) {
      for (const part of message.content)
        tokens += part.type === 'text' ? countWords(String(part['text'] ?? '')) : 85;
    }
  }
  return tokens;
}

function usage(request: ChatRequest, completionTokens: number): Usage {
  const prompt = mockPromptTokens(request.messages);
  return {
    prompt_tokens: prompt,
    completion_tokens: completionTokens,
    total_tokens: prompt + completionTokens,
    prompt_tokens_details: { cached_tokens: 0 },
    completion_tokens_details: { reasoning_tokens: 0 },
  };
}

/** A unit vector seeded by the text: the same input always embeds the same. */
function vectorFor(text: string, dimensions: number): number[] {
  let seed = 2166136261;
  for (let i = 0; i < text.length; i++) seed = Math.imul(seed ^ text.charCodeAt(i), 16777619);
  const values: number[] = [];
  let norm = 0;
  for (let i = 0; i < dimensions; i++) {
    seed = Math.imul(seed ^ (seed >>> 15), 2246822507) ^ i;
    const v = ((seed >>> 0) / 0xffffffff) * 2 - 1;
    values.push(v);
    norm += v * v;
  }
  const scale = norm > 0 ? 1 / Math.sqrt(norm) : 1;
  return values.map((v) => v * scale);
}
