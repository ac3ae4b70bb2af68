/**
 * What a passed-through Anthropic stream bills: the usage the upstream
 * reported (input side in `message_start`, cumulative counts in
 * `message_delta`) and how much content was relayed, so a stream cut short
 * (client gone, upstream error) is still billed for what it consumed. The
 * twin of StreamTally for streams that stay in Anthropic's event shape.
 */
import { estimateCompletionTokens } from '../core/token-estimate.ts';
import type { Billed } from '../core/types.ts';
import {
  type AnthropicUsage,
  type MessageStreamEvent,
  mergeStreamUsage,
  toCanonicalUsage,
} from '../providers/anthropic/index.ts';
import { estimatedBill } from './bills.ts';

export class AnthropicEventTally {
  readonly #usage: AnthropicUsage = { input_tokens: 0, output_tokens: 0 };
  #sawStart = false;
  #sawFinalCount = false;
  #contentEvents = 0;
  #contentChars = 0;

  /** True once a delta carrying content (text, tool input, thinking) was seen. */
  get sawContent(): boolean {
    return this.#contentEvents > 0;
  }

  observe(event: MessageStreamEvent): void {
    switch (event.type) {
      case 'message_start':
        this.#sawStart = true;
        if (event.message?.usage) mergeStreamUsage(this.#usage, event.message.usage);
        break;
      case 'message_delta':
        if (event.usage) {
          mergeStreamUsage(this.#usage, event.usage);
          this.#sawFinalCount = typeof event.usage.output_tokens === 'number';
        }
        break;
      case 'content_block_delta':
        this.#countContent(event.delta);
        break;
    }
  }

  /**
   * What the attempt consumed: the upstream's counts once message_delta gave
   * the output, else its input count with the output estimated from what was
   * relayed (or everything estimated when the stream never started).
   */
  billed(estimatePromptTokens: () => number): Billed {
    if (this.#sawStart && this.#sawFinalCount)
      return { usage: toCanonicalUsage(this.#usage), source: 'upstream' };
    const relayed = estimateCompletionTokens(this.#contentEvents, this.#contentChars);
    const output = Math.max(this.#usage.output_tokens, relayed);
    if (this.#sawStart) {
      return { usage: toCanonicalUsage({ ...this.#usage, output_tokens: output }), source: 'estimated' };
    }
    return estimatedBill(estimatePromptTokens(), output);
  }

  #countContent(delta: unknown): void {
    if (typeof delta !== 'object' || delta === null) return;
    const d = delta as Record<string, unknown>;
    const text = d['text'] ?? d['partial_json'] ?? d['thinking'];
    if (typeof text === 'string' && text.length > 0) {
      this.#contentEvents++;
      this.#contentChars += text.length;
    }
  }
}
