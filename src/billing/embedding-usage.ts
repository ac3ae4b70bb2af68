/**
 * What an embeddings answer bills (embeddings produce no completion tokens),
 * and where the counts came from: the upstream, the adapter's estimate
 * (`USAGE_ESTIMATED`, e.g. Gemini reports none), or nowhere.
 */
import { type Billed, type EmbeddingResponse, USAGE_ESTIMATED, type Usage } from '../core/types.ts';

const NO_TOKENS: Usage = { prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 };

/** An answer without counts bills zero tokens (source `none`), never unknown ones. */
export function embeddingBill(response: EmbeddingResponse): Billed {
  const usage = response.usage;
  if (!usage) return { usage: NO_TOKENS, source: 'none' };
  return {
    // An OpenAI-compatible server may leave a count out: zero, never undefined, reaches the ledger.
    usage: {
      prompt_tokens: usage.prompt_tokens ?? 0,
      completion_tokens: 0,
      total_tokens: usage.total_tokens ?? 0,
    },
    source: response[USAGE_ESTIMATED] === true ? 'estimated' : 'upstream',
  };
}
