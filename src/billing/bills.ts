/** The common bills: what the upstream reported, or the prompt alone (estimated). */
import type { Billed, Usage } from '../core/types.ts';

/** The upstream's own counts; nothing when it reported none. */
export function upstreamBill(usage: Usage | undefined): Billed | undefined {
  return usage ? { usage, source: 'upstream' } : undefined;
}

/** What an attempt cut before any answer bills: the prompt the upstream may have read, estimated. */
export function promptOnly(promptTokens: number): Billed | undefined {
  if (promptTokens <= 0) return undefined;
  return {
    usage: { prompt_tokens: promptTokens, completion_tokens: 0, total_tokens: promptTokens },
    source: 'estimated',
  };
}
