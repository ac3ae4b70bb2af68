/**
 * What a request needs from a target, read once per decision and only by the
 * strategies that care (capabilities, cost): prompt size, requested output,
 * tools, images, JSON mode.
 */

import { estimateEmbeddingTokens, estimatePromptTokens } from '../core/token-estimate.ts';
import type { ChatRequest, EmbeddingRequest } from '../core/types.ts';

export interface RequestFeatures {
  promptTokens: number;
  /** `max_completion_tokens` ?? `max_tokens`, when the client set one. */
  maxOutputTokens: number | undefined;
  needsTools: boolean;
  needsVision: boolean;
  needsJsonMode: boolean;
}

/** Completion tokens assumed for cost when the client sets no limit. */
export const DEFAULT_EXPECTED_OUTPUT_TOKENS = 512;

export function isChatRequest(request: ChatRequest | EmbeddingRequest): request is ChatRequest {
  return Array.isArray((request as ChatRequest).messages);
}

export function readFeatures(request: ChatRequest | EmbeddingRequest): RequestFeatures {
  if (!isChatRequest(request)) {
    return {
      promptTokens: estimateEmbeddingTokens(request.input),
      maxOutputTokens: 0,
      needsTools: false,
      needsVision: false,
      needsJsonMode: false,
    };
  }
  const max = request.max_completion_tokens ?? request.max_tokens;
  const format = request['response_format'] as { type?: unknown } | undefined;
  return {
    promptTokens: estimatePromptTokens(request),
    maxOutputTokens: typeof max === 'number' ? max : undefined,
    needsTools: Array.isArray(request.tools) && request.tools.length > 0,
    needsVision: hasImage(request),
    needsJsonMode: format?.type === 'json_object' || format?.type === 'json_schema',
  };
}

function hasImage(request: ChatRequest): boolean {
  for (const message of request.messages) {
    if (!Array.isArray(message.content)) continue;
    for (const part of message.content) if (part.type === 'image_url') return true;
  }
  return false;
}
