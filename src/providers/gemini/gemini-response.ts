/**
 * Gemini `GenerateContentResponse` → canonical chat completion.
 *
 * Decisions worth knowing:
 * - Gemini function calls have no id (or an optional one); calls get
 *   `call_<n>`, numbered in order over the whole response, the same numbering
 *   the stream translator uses, so streamed and non-streamed answers agree.
 * - `thought` parts (model reasoning) are not answer text and are left out;
 *   their tokens are still billed, as `reasoning_tokens`.
 * - A blocked prompt (`promptFeedback.blockReason`, no candidates) becomes a
 *   normal answer with no content and `finish_reason: content_filter`, exactly
 *   what an OpenAI client sees when OpenAI filters: clients already handle it,
 *   and a 400 would wrongly suggest the request itself was malformed.
 */

import { randomUUID } from 'node:crypto';
import { GatewayError } from '../../core/errors.ts';
import { toolCallOf } from '../../core/tool-calls.ts';
import type { ChatChoice, ChatCompletion, FinishReason, ToolCall, Usage } from '../../core/types.ts';
import type { GeminiFinishReason, GeminiPart, GeminiResponse, GeminiUsageMetadata } from './gemini-wire.ts';

const CONTENT_FILTER_REASONS = new Set([
  'SAFETY',
  'RECITATION',
  'BLOCKLIST',
  'PROHIBITED_CONTENT',
  'SPII',
  'IMAGE_SAFETY',
]);

export function mapFinishReason(reason: GeminiFinishReason | undefined, hasToolCalls: boolean): FinishReason {
  if (reason === 'MAX_TOKENS') return 'length';
  if (reason !== undefined && CONTENT_FILTER_REASONS.has(reason)) return 'content_filter';
  // STOP, OTHER, MALFORMED_FUNCTION_CALL...: the answer ended; what it holds decides the reason.
  return hasToolCalls ? 'tool_calls' : 'stop';
}

export function toUsage(meta: GeminiUsageMetadata | undefined): Usage | undefined {
  if (!meta) return undefined;
  const prompt = meta.promptTokenCount ?? 0;
  const thoughts = meta.thoughtsTokenCount ?? 0;
  const completion = (meta.candidatesTokenCount ?? 0) + thoughts;
  const usage: Usage = {
    prompt_tokens: prompt,
    completion_tokens: completion,
    total_tokens: meta.totalTokenCount ?? prompt + completion,
  };
  if (meta.cachedContentTokenCount !== undefined) {
    usage.prompt_tokens_details = { cached_tokens: meta.cachedContentTokenCount };
  }
  if (meta.thoughtsTokenCount !== undefined) {
    usage.completion_tokens_details = { reasoning_tokens: thoughts };
  }
  return usage;
}

/** Answer text of a list of parts (thoughts excluded), and its function calls. */
export function splitParts(
  parts: GeminiPart[] | undefined,
  nextCallId: () => string,
): { text: string; calls: ToolCall[] } {
  let text = '';
  const calls: ToolCall[] = [];
  for (const part of parts ?? []) {
    if (typeof part.text === 'string' && part.thought !== true) text += part.text;
    if (part.functionCall) {
      calls.push(
        toolCallOf(part.functionCall.id || nextCallId(), part.functionCall.name, part.functionCall.args),
      );
    }
  }
  return { text, calls };
}

export function completionId(response: GeminiResponse): string {
  return `chatcmpl-${response.responseId || randomUUID()}`;
}

export function fromGeminiResponse(
  response: GeminiResponse,
  model: string,
  created: number = Math.floor(Date.now() / 1000),
): ChatCompletion {
  let calls = 0;
  const nextCallId = () => `call_${calls++}`;
  const candidates = Array.isArray(response.candidates) ? response.candidates : [];
  const choices: ChatChoice[] = candidates.map((candidate, i) => {
    const { text, calls: toolCalls } = splitParts(candidate.content?.parts, nextCallId);
    return {
      index: candidate.index ?? i,
      message: {
        role: 'assistant',
        content: text.length > 0 || toolCalls.length === 0 ? text : null,
        ...(toolCalls.length > 0 ? { tool_calls: toolCalls } : {}),
      },
      finish_reason: mapFinishReason(candidate.finishReason, toolCalls.length > 0),
      logprobs: null,
    };
  });
  if (choices.length === 0) {
    if (!response.promptFeedback?.blockReason) {
      throw new GatewayError('upstream_bad_response', 'Upstream response has no candidates');
    }
    choices.push({
      index: 0,
      message: { role: 'assistant', content: null },
      finish_reason: 'content_filter',
      logprobs: null,
    });
  }
  const completion: ChatCompletion = {
    id: completionId(response),
    object: 'chat.completion',
    created,
    model,
    choices,
  };
  const usage = toUsage(response.usageMetadata);
  if (usage) completion.usage = usage;
  return completion;
}
