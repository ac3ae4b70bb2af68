/**
 * Gemini `streamGenerateContent?alt=sse` → canonical chunks, incrementally.
 *
 * Each SSE `data:` is a whole GenerateContentResponse holding only the new
 * parts of each candidate; `usageMetadata` is repeated and complete on the
 * last frames. The translator keeps per-candidate state (role sent, tool call
 * numbering, finished) and the latest usage, which it emits once at the end as
 * the contract's `choices: []` usage chunk. Error frames (`{"error":...}`)
 * are mapped like HTTP errors.
 */
import { GatewayError } from '../../core/errors.ts';
import type { ChatCompletionChunk, ChunkChoice } from '../../core/types.ts';
import type { SseEvent } from '../sse.ts';
import type { EventReader } from '../upstream-event-stream.ts';
import { httpStatusOf, mapGeminiError } from './gemini-error.ts';
import { completionId, mapFinishReason, splitParts, toUsage } from './gemini-response.ts';
import type { GeminiResponse, GeminiUsageMetadata } from './gemini-wire.ts';

interface CandidateState {
  started: boolean;
  toolCalls: number;
  finished: boolean;
}

export interface TranslatorOptions {
  model: string;
  created?: number;
  redact?: (text: string) => string;
}

/** GenerateContentResponse objects → chunks. */
export class GeminiChunkTranslator {
  readonly #model: string;
  readonly #created: number;
  #id: string | undefined;
  #calls = 0;
  readonly #candidates = new Map<number, CandidateState>();
  #usage: GeminiUsageMetadata | undefined;
  #blocked = false;

  constructor(options: TranslatorOptions) {
    this.#model = options.model;
    this.#created = options.created ?? Math.floor(Date.now() / 1000);
  }

  /** True once every candidate seen has finished, or the prompt was blocked. */
  get complete(): boolean {
    if (this.#blocked) return true;
    if (this.#candidates.size === 0) return false;
    for (const state of this.#candidates.values()) if (!state.finished) return false;
    return true;
  }

  translate(response: GeminiResponse): ChatCompletionChunk[] {
    this.#id ??= completionId(response);
    // Repeated on many frames: keep the latest, convert once at the end.
    if (response.usageMetadata) this.#usage = response.usageMetadata;
    const choices: ChunkChoice[] = [];
    const candidates = Array.isArray(response.candidates) ? response.candidates : [];
    candidates.forEach((candidate, i) => {
      const index = candidate.index ?? i;
      let state = this.#candidates.get(index);
      if (!state) {
        state = { started: false, toolCalls: 0, finished: false };
        this.#candidates.set(index, state);
      }
      const { text, calls } = splitParts(candidate.content?.parts, () => `call_${this.#calls++}`);
      const delta: ChunkChoice['delta'] = {};
      if (!state.started) delta.role = 'assistant';
      if (text.length > 0) delta.content = text;
      if (calls.length > 0) {
        delta.tool_calls = calls.map((call) => ({
          index: state.toolCalls++,
          id: call.id,
          type: 'function' as const,
          function: { name: call.function.name, arguments: call.function.arguments },
        }));
      }
      const finish = candidate.finishReason
        ? mapFinishReason(candidate.finishReason, state.toolCalls > 0)
        : null;
      if (finish) state.finished = true;
      if (delta.role === undefined && delta.content === undefined && !delta.tool_calls && !finish) return;
      if (delta.role && delta.content === undefined && !delta.tool_calls) delta.content = '';
      state.started = true;
      choices.push({ index, delta, finish_reason: finish, logprobs: null });
    });
    if (candidates.length === 0 && response.promptFeedback?.blockReason && !this.#blocked) {
      this.#blocked = true;
      choices.push({
        index: 0,
        delta: { role: 'assistant', content: '' },
        finish_reason: 'content_filter',
        logprobs: null,
      });
    }
    return choices.length > 0 ? [this.#chunk(choices)] : [];
  }

  /** The closing usage chunk, when the upstream reported usage. */
  finish(): ChatCompletionChunk[] {
    const usage = toUsage(this.#usage);
    if (!usage) return [];
    const chunk = this.#chunk([]);
    chunk.usage = usage;
    return [chunk];
  }

  #chunk(choices: ChunkChoice[]): ChatCompletionChunk {
    return {
      id: this.#id ?? 'chatcmpl-gemini',
      object: 'chat.completion.chunk',
      created: this.#created,
      model: this.#model,
      choices,
    };
  }
}

/** Reads a Gemini event stream (each `data:` a GenerateContentResponse) as canonical chunks (../upstream-event-stream.ts). */
export class GeminiChunkReader implements EventReader<ChatCompletionChunk> {
  readonly #chunks: GeminiChunkTranslator;
  readonly #redact: (text: string) => string;

  constructor(options: TranslatorOptions) {
    this.#chunks = new GeminiChunkTranslator(options);
    this.#redact = options.redact ?? ((text) => text);
  }

  read(event: SseEvent, out: ChatCompletionChunk[]): void {
    if (event.data.length === 0) return;
    for (const chunk of this.#chunks.translate(this.#parse(event.data))) out.push(chunk);
  }

  /** Checks the stream was complete, and adds the usage chunk. */
  end(out: ChatCompletionChunk[]): void {
    if (!this.#chunks.complete) {
      throw new GatewayError('upstream_bad_response', 'Upstream stream ended before completion');
    }
    for (const chunk of this.#chunks.finish()) out.push(chunk);
  }

  #parse(data: string): GeminiResponse {
    let value: unknown;
    try {
      value = JSON.parse(data);
    } catch {
      throw new GatewayError('upstream_bad_response', 'Upstream sent a stream frame that is not valid JSON');
    }
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      throw new GatewayError('upstream_bad_response', 'Upstream sent an unexpected stream frame');
    }
    const error = (value as { error?: { code?: number; status?: string } }).error;
    if (error !== undefined) {
      throw mapGeminiError(httpStatusOf(error?.status, error?.code), {}, data, this.#redact);
    }
    return value as GeminiResponse;
  }
}
