/** The common bills: what the upstream reported, or the prompt alone (estimated). */
import type { Billed, Usage } from '../core/types.ts';

/** The upstream's own counts; nothing when it reported none. */
export function upstreamBill(usage: Usage | undefined): Billed | undefined {
  return usage ? { usage, source: 'upstream' } : undefined;
}

/** Counts the gateway estimated (the upstream reported none, or not all). */
export function estimatedBill(promptTokens: number, completionTokens: number): Billed {
  return {
    usage: {
      prompt_tokens: promptTokens,
      completion_tokens: completionTokens,
      total_tokens: promptTokens + completionTokens,
    },
    source: 'estimated',
  };
}

/** What an attempt cut before any answer bills: the prompt the upstream may have read, estimated. */
export function promptOnly(promptTokens: number): Billed | undefined {
  return promptTokens > 0 ? estimatedBill(promptTokens, 0) : undefined;
}
