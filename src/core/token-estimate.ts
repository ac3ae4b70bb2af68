/**
 * Token estimates for when the upstream never told us (a stream cut before
 * its usage frame, a request aborted mid-flight). Rows using these are marked
 * `usage_source = estimated`. ~4 characters per token is the usual English
 * average for GPT/Claude tokenizers; each message adds a small fixed overhead.
 */
import type { ChatRequest } from './types.ts';

export function estimatePromptTokens(request: ChatRequest): number {
  let chars = 0;
  for (const message of request.messages) {
    chars += 12;
    const content = message.content;
    if (typeof content === 'string') chars += content.length;
    else if (Array.isArray(content)) {
      for (const part of content) {
        if (part.type === 'text') chars += String(part['text'] ?? '').length;
        else chars += 340; // an image part costs on the order of 85 tokens at low detail
      }
    }
  }
  return Math.ceil(chars / 4);
}

/** Output estimate from what was relayed: at least one token per content chunk. */
export function estimateCompletionTokens(contentChunks: number, contentChars: number): number {
  return Math.max(contentChunks, Math.ceil(contentChars / 4));
}
