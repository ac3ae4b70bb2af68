/**
 * OpenAI SSE bytes → canonical chunks. The canonical format *is* OpenAI's, so
 * this only frames, validates and detects errors; chunks are yielded as they
 * arrive. The adapter reads the upstream body through it (../http.ts `readUpstream`).
 */
import { GatewayError } from '../../core/errors.ts';
import type { ChatCompletionChunk } from '../../core/types.ts';
import { attachWireText } from '../../core/wire-text.ts';
import { type SseEvent, SseParser } from '../sse.ts';

export async function* fromOpenAIStream(
  body: AsyncIterable<Uint8Array>,
  redact: (text: string) => string,
): AsyncGenerator<ChatCompletionChunk> {
  const state = { finished: false, sawDone: false };
  // The parser is fed here rather than through `sseEvents`: one generator per
  // stream instead of two stacked ones, which every chunk would pass through.
  const parser = new SseParser();
  for await (const bytes of body) {
    for (const event of parser.push(bytes)) {
      const chunk = nextChunk(event, state, redact);
      if (chunk !== undefined) yield chunk;
    }
  }
  for (const event of parser.end()) {
    const chunk = nextChunk(event, state, redact);
    if (chunk !== undefined) yield chunk;
  }
  if (!state.sawDone && !state.finished) {
    throw new GatewayError('upstream_bad_response', 'Upstream stream ended before completion');
  }
}

/** The chunk an event carries, if any; notes `[DONE]` and a finish reason on the way. */
function nextChunk(
  event: SseEvent,
  state: { finished: boolean; sawDone: boolean },
  redact: (text: string) => string,
): ChatCompletionChunk | undefined {
  const chunk = parseEvent(event.data, redact);
  if (chunk === 'done') {
    state.sawDone = true;
    return undefined;
  }
  if (chunk === undefined || state.sawDone) return undefined;
  if (chunk.choices.some((c) => c.finish_reason)) state.finished = true;
  return chunk;
}

function parseEvent(
  data: string,
  redact: (text: string) => string,
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
  return attachWireText(value as ChatCompletionChunk, data);
}
