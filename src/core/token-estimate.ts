/**
 * The gateway's one token estimate, for when no tokenizer answer is at hand:
 * a stream cut before its usage frame, a request aborted mid-flight (ledger
 * rows marked `usage_source = estimated`), an upstream that reports no
 * embedding usage, routing's view of a request's size (cost, capacity,
 * complexity) and `count_tokens` without an upstream to ask.
 *
 * ~4 characters per token is the usual English average for GPT/Claude
 * tokenizers; each message adds a small fixed overhead for its framing.
 * Everything here derives from `tokensForChars`, so the rule lives in one place.
 */
import type { ChatRequest, EmbeddingRequest } from './types.ts';

const CHARS_PER_TOKEN = 4;
/** Role and separators around each message, in characters (~3 tokens). */
export const MESSAGE_OVERHEAD_CHARS = 12;
/** An image part costs on the order of 85 tokens at low detail. */
const IMAGE_PART_CHARS = 340;

export function tokensForChars(chars: number): number {
  return Math.ceil(chars / CHARS_PER_TOKEN);
}

export function estimateTextTokens(text: string): number {
  return tokensForChars(text.length);
}

export function estimatePromptTokens(request: ChatRequest): number {
  let chars = 0;
  for (const message of request.messages) {
    chars += MESSAGE_OVERHEAD_CHARS;
    const content = message.content;
    if (typeof content === 'string') chars += content.length;
    else if (Array.isArray(content)) {
      for (const part of content) {
        if (part.type === 'text') chars += String(part['text'] ?? '').length;
        else chars += IMAGE_PART_CHARS;
      }
    }
  }
  return tokensForChars(chars);
}

/** The most output a request allows (what a token limit charges for it before the answer); 0 when it sets none. */
export function maxOutputTokens(request: ChatRequest): number {
  return request.max_completion_tokens ?? request.max_tokens ?? 0;
}

/** Output estimate from what was relayed: at least one token per content chunk. */
export function estimateCompletionTokens(contentChunks: number, contentChars: number): number {
  return Math.max(contentChunks, tokensForChars(contentChars));
}

/** Embedding input: each string estimated alone; pre-tokenized input counts its tokens. */
export function estimateEmbeddingTokens(input: EmbeddingRequest['input']): number {
  if (typeof input === 'string') return estimateTextTokens(input);
  let tokens = 0;
  for (const item of input) {
    if (typeof item === 'string') tokens += estimateTextTokens(item);
    else if (typeof item === 'number') tokens += 1;
    else tokens += item.length;
  }
  return tokens;
}
