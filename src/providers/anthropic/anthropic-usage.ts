/**
 * Anthropic usage ⇄ canonical (OpenAI) usage, both directions in one place.
 *
 * Anthropic counts cache reads and cache writes apart from `input_tokens`;
 * OpenAI's `prompt_tokens` includes them (reads appear again as
 * `prompt_tokens_details.cached_tokens`). Cache writes have no OpenAI field,
 * so they ride along as `cache_creation_input_tokens`: they are billed at
 * their own rate, and the way back needs them to rebuild `input_tokens`.
 */
import type { Usage } from '../../core/types.ts';
import type { AnthropicUsage } from './anthropic-wire.ts';

export function toCanonicalUsage(usage: AnthropicUsage): Usage {
  const cacheRead = usage.cache_read_input_tokens ?? 0;
  const cacheCreation = usage.cache_creation_input_tokens ?? 0;
  const prompt = (usage.input_tokens ?? 0) + cacheRead + cacheCreation;
  const completion = usage.output_tokens ?? 0;
  return {
    prompt_tokens: prompt,
    completion_tokens: completion,
    total_tokens: prompt + completion,
    prompt_tokens_details: { cached_tokens: cacheRead },
    cache_creation_input_tokens: cacheCreation,
  };
}

/** The inverse of `toCanonicalUsage`; zeros where the canonical usage is missing. */
export function fromCanonicalUsage(usage: Usage | undefined | null): Required<
  Pick<AnthropicUsage, 'input_tokens' | 'output_tokens'>
> & {
  cache_creation_input_tokens: number;
  cache_read_input_tokens: number;
} {
  const cacheRead = usage?.prompt_tokens_details?.cached_tokens ?? 0;
  const written = usage?.['cache_creation_input_tokens'];
  const cacheCreation = typeof written === 'number' ? written : 0;
  return {
    input_tokens: Math.max(0, (usage?.prompt_tokens ?? 0) - cacheRead - cacheCreation),
    output_tokens: usage?.completion_tokens ?? 0,
    cache_creation_input_tokens: cacheCreation,
    cache_read_input_tokens: cacheRead,
  };
}

const COUNTED = [
  'input_tokens',
  'output_tokens',
  'cache_read_input_tokens',
  'cache_creation_input_tokens',
] as const;

/**
 * Folds a stream's usage report into the running totals: message_start gives
 * the input side, each message_delta cumulative counts, so a later value
 * replaces an earlier one rather than adding to it.
 */
export function mergeStreamUsage(totals: AnthropicUsage, report: Partial<AnthropicUsage>): void {
  for (const key of COUNTED) {
    const value = report[key];
    if (typeof value === 'number') totals[key] = value;
  }
}
