/**
 * OpenAI SSE events → canonical chunks. The canonical format *is* OpenAI's, so
 * this only validates and detects errors; the adapter reads the upstream body
 * through it push-style (../upstream-event-stream.ts).
 */
import { GatewayError } from '../../core/errors.ts';
import type { ChatCompletionChunk } from '../../core/types.ts';
import { attachWireFrame, attachWireText } from '../../core/wire-text.ts';
import type { SseEvent } from '../sse.ts';
import type { EventReader } from '../upstream-event-stream.ts';

/** Reads an OpenAI event stream: one chunk per event, `[DONE]` noted, errors thrown. */
export class OpenAIChunkReader implements EventReader<ChatCompletionChunk> {
  readonly #redact: (text: string) => string;
  #finished = false;
  #sawDone = false;

  constructor(redact: (text: string) => string) {
    this.#redact = redact;
  }

  read(event: SseEvent, out: ChatCompletionChunk[]): void {
    const chunk = parseEvent(event.data, this.#redact, event.frame);
    if (chunk === 'done') {
      this.#sawDone = true;
      return;
    }
    if (chunk === undefined || this.#sawDone) return;
    if (chunk.choices.some((c) => c.finish_reason)) this.#finished = true;
    out.push(chunk);
  }

  end(): void {
    if (!this.#sawDone && !this.#finished) {
      throw new GatewayError('upstream_bad_response', 'Upstream stream ended before completion');
    }
  }
}

function parseEvent(
  data: string,
  redact: (text: string) => string,
  frame: Uint8Array | undefined,
): ChatCompletionChunk | 'done' | undefined {
  if (data === '[DONE]') return 'done';
  if (data.length === 0) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(data);
  } catch {
    throw new GatewayError('upstream_bad_response', 'Upstream sent a stream frame that is not valid JSON');
  }
  if (value === null || typeof value !== 'object') {
    throw new GatewayError('upstream_bad_response', 'Upstream sent an unexpected stream frame');
  }
  const record = value as Record<string, unknown>;
  if (record['error'] !== undefined) {
    const error = record['error'] as { message?: unknown } | null;
    const message =
      typeof error?.message === 'string' ? redact(error.message) : 'Upstream reported an error mid-stream';
    throw new GatewayError('upstream_error', message);
  }
  if (!Array.isArray(record['choices'])) {
    throw new GatewayError('upstream_bad_response', 'Upstream sent a stream frame without choices');
  }
  // Kept so a relay to an OpenAI client can send it on as it came (api/openai/chunk-frame.ts).
  const chunk = attachWireText(value as ChatCompletionChunk, data);
  return frame === undefined ? chunk : attachWireFrame(chunk, frame);
}
