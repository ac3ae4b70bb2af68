/**
 * Throughput of the Anthropic stream translator on one core: a large synthetic
 * Anthropic SSE byte stream (text deltas, a tool call, pings, usage) is pushed
 * through the same SseParser + AnthropicUpstreamStreamParser the adapter uses, in
 * 16 KiB network-sized pieces, and canonical chunks per second are reported.
 *
 * Run alone: `node bench/translate-anthropic.ts` (prints the number).
 */
import { AnthropicUpstreamStreamParser } from '../src/providers/anthropic/anthropic-stream.ts';
import { SseParser } from '../src/providers/sse.ts';

const TEXT_DELTAS = 200_000;
const TOOL_DELTAS = 20_000;
const PIECE_BYTES = 16 * 1024;

function event(name: string, data: unknown): string {
  return `event: ${name}\ndata: ${JSON.stringify(data)}\n\n`;
}

/** One long message in Anthropic's streaming shape. */
function syntheticStream(): Buffer {
  const parts: string[] = [
    event('message_start', {
      type: 'message_start',
      message: {
        id: 'msg_bench',
        type: 'message',
        role: 'assistant',
        model: 'claude-sonnet-4-5',
        content: [],
        stop_reason: null,
        stop_sequence: null,
        usage: { input_tokens: 1000, output_tokens: 1 },
      },
    }),
    event('ping', { type: 'ping' }),
    event('content_block_start', {
      type: 'content_block_start',
      index: 0,
      content_block: { type: 'text', text: '' },
    }),
  ];
  for (let i = 0; i < TEXT_DELTAS; i++) {
    parts.push(
      event('content_block_delta', {
        type: 'content_block_delta',
        index: 0,
        delta: { type: 'text_delta', text: i % 7 === 0 ? ' héllo wörld 🌍' : ' token' },
      }),
    );
  }
  parts.push(event('content_block_stop', { type: 'content_block_stop', index: 0 }));
  parts.push(
    event('content_block_start', {
      type: 'content_block_start',
      index: 1,
      content_block: { type: 'tool_use', id: 'toolu_bench', name: 'lookup', input: {} },
    }),
  );
  for (let i = 0; i < TOOL_DELTAS; i++) {
    parts.push(
      event('content_block_delta', {
        type: 'content_block_delta',
        index: 1,
        delta: { type: 'input_json_delta', partial_json: i === 0 ? '{"q":"' : 'abc' },
      }),
    );
  }
  parts.push(
    event('content_block_delta', {
      type: 'content_block_delta',
      index: 1,
      delta: { type: 'input_json_delta', partial_json: '"}' },
    }),
  );
  parts.push(event('content_block_stop', { type: 'content_block_stop', index: 1 }));
  parts.push(
    event('message_delta', {
      type: 'message_delta',
      delta: { stop_reason: 'tool_use', stop_sequence: null },
      usage: { output_tokens: TEXT_DELTAS + TOOL_DELTAS },
    }),
  );
  parts.push(event('message_stop', { type: 'message_stop' }));
  return Buffer.from(parts.join(''));
}

export function benchAnthropicStream(): {
  chunksPerSecond: number;
  chunks: number;
  bytes: number;
  ms: number;
} {
  const bytes = syntheticStream();
  // One warm-up pass so the measured pass runs optimised code.
  translateAll(bytes);
  const started = performance.now();
  const chunks = translateAll(bytes);
  const ms = performance.now() - started;
  return {
    chunksPerSecond: Math.round((chunks / ms) * 1000),
    chunks,
    bytes: bytes.length,
    ms: Math.round(ms),
  };
}

function translateAll(bytes: Buffer): number {
  const parser = new SseParser();
  const translator = new AnthropicUpstreamStreamParser();
  let chunks = 0;
  for (let offset = 0; offset < bytes.length; offset += PIECE_BYTES) {
    for (const e of parser.push(bytes.subarray(offset, offset + PIECE_BYTES))) {
      chunks += translator.translate(e).length;
    }
  }
  for (const e of parser.end()) chunks += translator.translate(e).length;
  translator.end();
  return chunks;
}

if (import.meta.main) {
  const result = benchAnthropicStream();
  console.log(
    `anthropic stream translation: ${result.chunksPerSecond.toLocaleString('en')} chunks/s ` +
      `(${result.chunks.toLocaleString('en')} chunks, ${(result.bytes / 1e6).toFixed(1)} MB in ${result.ms} ms)`,
  );
}
