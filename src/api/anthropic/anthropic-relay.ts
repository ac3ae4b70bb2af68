/**
 * Passthrough of an Anthropic upstream's stream to an Anthropic client: each
 * event goes out as it came (its name and its data as sent), except that
 * `message_start` names the model the client asked for, as a JSON answer does.
 *
 * On the way it keeps what the ledger needs: the usage the upstream reported
 * (input side in message_start, cumulative counts in message_delta) and how
 * much content was relayed, so a stream cut short (client gone, upstream
 * error) is still billed for what it consumed.
 */
import type { Billed } from '../../core/types.ts';
import {
  type AnthropicUsage,
  type MessageStreamEvent,
  mergeStreamUsage,
  toCanonicalUsage,
} from '../../providers/anthropic/index.ts';
import { encodeFrame } from './anthropic-inbound-stream.ts';

export interface RawEvent {
  event: string;
  data: string;
}

export interface RelayEstimates {
  /** Prompt tokens when the upstream reported none (it never started). */
  promptTokens: () => number;
  /** Output tokens for content relayed without a final count. */
  completionTokens: (contentEvents: number, contentChars: number) => number;
}

export class AnthropicEventRelay {
  readonly #model: string;
  readonly #usage: AnthropicUsage = { input_tokens: 0, output_tokens: 0 };
  #sawStart = false;
  #sawFinalCount = false;
  #contentEvents = 0;
  #contentChars = 0;

  constructor(clientModel: string) {
    this.#model = clientModel;
  }

  /** True once a delta carrying content (text, tool input, thinking) was relayed. */
  get sawContent(): boolean {
    return this.#contentEvents > 0;
  }

  /** The frame to send for one upstream event. */
  relay(raw: RawEvent): string {
    const event = parseEvent(raw.data);
    let data = raw.data;
    switch (event?.type) {
      case 'message_start':
        this.#sawStart = true;
        if (event.message?.usage) mergeStreamUsage(this.#usage, event.message.usage);
        data = JSON.stringify({ ...event, message: { ...event.message, model: this.#model } });
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
    return encodeFrame(raw.event, data);
  }

  /**
   * What the attempt consumed: the upstream's counts once message_delta gave
   * the output, else its input count with the output estimated from what was
   * relayed (or everything estimated when the stream never started).
   */
  billed(estimates: RelayEstimates): Billed {
    if (this.#sawStart && this.#sawFinalCount)
      return { usage: toCanonicalUsage(this.#usage), source: 'upstream' };
    const relayed = estimates.completionTokens(this.#contentEvents, this.#contentChars);
    const output = Math.max(this.#usage.output_tokens, relayed);
    if (this.#sawStart) {
      return { usage: toCanonicalUsage({ ...this.#usage, output_tokens: output }), source: 'estimated' };
    }
    const prompt = estimates.promptTokens();
    return {
      usage: { prompt_tokens: prompt, completion_tokens: output, total_tokens: prompt + output },
      source: 'estimated',
    };
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

/**
 * Events this relay reads are parsed; one it cannot parse is still relayed
 * as sent (the client's SDK is the judge of it), only not counted.
 */
function parseEvent(data: string): MessageStreamEvent | undefined {
  try {
    const value: unknown = JSON.parse(data);
    return typeof value === 'object' && value !== null ? (value as MessageStreamEvent) : undefined;
  } catch {
    return undefined;
  }
}
