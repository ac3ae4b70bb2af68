/**
 * Gemini stream translation throughput on one core: a synthetic
 * streamGenerateContent?alt=sse body (CRLF framing, a whole response per frame,
 * multi-byte text, usage on the last frame) cut into 16 KiB network-sized
 * reads and run through the adapter's reader (SSE parsing + JSON + chunk building).
 * Prints, and returns, canonical chunks produced per second.
 */
import { fileURLToPath } from 'node:url';
import type { ChatCompletionChunk } from '../src/core/types.ts';
import { GeminiChunkReader } from '../src/providers/gemini/gemini-stream.ts';
import { SseParser } from '../src/providers/sse.ts';

const FRAMES = 20_000;
const READ_BYTES = 16 * 1024;
const ROUNDS = 5;

function syntheticStream(): Buffer {
  const events: string[] = [];
  for (let i = 0; i < FRAMES; i++) {
    const last = i === FRAMES - 1;
    events.push(
      `data: ${JSON.stringify({
        candidates: [
          {
            content: { role: 'model', parts: [{ text: ` mot ${i} — café 🌍` }] },
            ...(last ? { finishReason: 'STOP' } : {}),
            index: 0,
          },
        ],
        usageMetadata: last
          ? { promptTokenCount: 12, candidatesTokenCount: FRAMES, totalTokenCount: FRAMES + 12 }
          : { promptTokenCount: 12, totalTokenCount: 12 },
        modelVersion: 'gemini-2.5-flash',
        responseId: 'bench',
      })}\r\n\r\n`,
    );
  }
  return Buffer.from(events.join(''));
}

function translateOnce(bytes: Buffer): number {
  const reader = new GeminiChunkReader({ model: 'gemini-2.5-flash', created: 0 });
  const parser = new SseParser();
  const out: ChatCompletionChunk[] = [];
  let chunks = 0;
  for (let offset = 0; offset < bytes.length; offset += READ_BYTES) {
    for (const event of parser.push(bytes.subarray(offset, offset + READ_BYTES))) reader.read(event, out);
    chunks += out.length;
    out.length = 0;
  }
  for (const event of parser.end()) reader.read(event, out);
  reader.end(out);
  return chunks + out.length;
}

export function benchGeminiStream(): { chunksPerSecond: number } {
  const bytes = syntheticStream();
  translateOnce(bytes); // warm-up: JIT, inline caches
  let chunks = 0;
  const start = process.hrtime.bigint();
  for (let round = 0; round < ROUNDS; round++) chunks += translateOnce(bytes);
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  return { chunksPerSecond: Math.round(chunks / seconds) };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { chunksPerSecond } = benchGeminiStream();
  console.log(`gemini stream translation: ${chunksPerSecond.toLocaleString('en-US')} chunks/s (one core)`);
}
