/**
 * What a relayed stream bills. The upstream's own usage when it sent one;
 * otherwise (a stream cut short, a provider that reports none) an estimate
 * from the prompt and from the content actually relayed, marked `estimated`.
 */
import { estimateCompletionTokens } from '../core/token-estimate.ts';
import type { Billed, ChatCompletionChunk, Usage } from '../core/types.ts';
import { estimatedBill } from './bills.ts';
import type { Attempt } from './usage-recorder.ts';

export class StreamTally {
  readonly #attempt: Attempt;
  usage: Usage | undefined;
  #contentChunks = 0;
  #contentChars = 0;

  constructor(attempt: Attempt) {
    this.#attempt = attempt;
  }

  observe(chunk: ChatCompletionChunk): void {
    if (chunk.usage) this.usage = chunk.usage;
    for (const choice of chunk.choices) {
      const content = choice.delta.content;
      if (typeof content === 'string' && content.length > 0) {
        this.#contentChunks++;
        this.#contentChars += content.length;
        this.#attempt.markFirstToken();
      } else if (choice.delta.tool_calls) {
        this.#contentChunks++;
        this.#attempt.markFirstToken();
      }
    }
  }

  /** The upstream's usage, or an estimate from the prompt and the relayed content. */
  billed(estimatePromptTokens: () => number): Billed {
    if (this.usage) return { usage: this.usage, source: 'upstream' };
    return estimatedBill(
      estimatePromptTokens(),
      estimateCompletionTokens(this.#contentChunks, this.#contentChars),
    );
  }
}
