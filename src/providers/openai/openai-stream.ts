/**
 * OpenAI SSE bytes → canonical chunks. The canonical format *is* OpenAI's, so
 * this only frames, validates and detects errors; chunks are yielded as they
 * arrive. The adapter reads the upstream body through it (../http.ts `readUpstream`).
 */
import { GatewayError } from '../../core/errors.ts';
import type { ChatCompletionChunk } from '../../core/types.ts';
import { sseEvents } from '../sse.ts';

export async function* fromOpenAIStream(
  body: AsyncIterable<Uint8Array>,
  redact: (text: string) => string,
): AsyncGenerator<ChatCompletionChunk> {
  let finished = false;
  let sawDone = false;
  for await (const event of sseEvents(body)) {
    const chunk = parseEvent(event.data, redact);
    if (chunk === 'done') {
      sawDone = true;
      continue;
    }
    if (chunk === undefined || sawDone) continue;
    if (chunk.choices.some((c) => c.finish_reason)) finished = true;
    yield chunk;
  }
  if (!sawDone && !finished) {
    throw new GatewayError('upstream_bad_response', 'Upstream stream ended before completion');
  }
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
  return value as ChatCompletionChunk;
}
