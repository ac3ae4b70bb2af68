import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { type SseEvent, SseParser } from '../../src/providers/sse.ts';

const encoder = new TextEncoder();

function parseWhole(bytes: Uint8Array): SseEvent[] {
  const parser = new SseParser();
  return [...parser.push(bytes), ...parser.end()];
}

function parseSplit(bytes: Uint8Array, offsets: number[]): SseEvent[] {
  const parser = new SseParser();
  const events: SseEvent[] = [];
  let start = 0;
  for (const offset of [...offsets, bytes.length]) {
    events.push(...parser.push(bytes.subarray(start, offset)));
    start = offset;
  }
  return [...events, ...parser.end()];
}

/** A deterministic PRNG, so a failing split can be reproduced. */
function prng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

const STREAM = [
  ': comment line (heartbeat)',
  'event: message',
  'data: {"text":"héllo wörld 你好 🚀"}',
  '',
  'data:{"no":"space"}',
  '',
  'data: first line',
  'data: second line',
  'id: 7',
  'retry: 1000',
  '',
  'event: ping',
  'data: {}',
  '',
  'data: [DONE]',
  '',
  '',
];

describe('SseParser', () => {
  for (const ending of ['\n', '\r\n', '\r']) {
    test(`parses fields, comments and multi-line data with ${JSON.stringify(ending)} line endings`, () => {
      const events = parseWhole(encoder.encode(STREAM.join(ending)));
      assert.deepEqual(
        events.map((e) => [e.event, e.data]),
        [
          ['message', '{"text":"héllo wörld 你好 🚀"}'],
          ['message', '{"no":"space"}'],
          ['message', 'first line\nsecond line'],
          ['ping', '{}'],
          ['message', '[DONE]'],
        ],
      );
      assert.equal(events[2]?.id, '7');
    });
  }

  test('every single split point (inside UTF-8 sequences and CRLF pairs) gives identical events', () => {
    const bytes = encoder.encode(STREAM.join('\r\n'));
    const expected = parseWhole(bytes);
    for (let offset = 0; offset <= bytes.length; offset++) {
      assert.deepEqual(parseSplit(bytes, [offset]), expected, `split at byte ${offset}`);
    }
  });

  test('2,000 random multi-way splits give identical events', () => {
    const random = prng(42);
    for (const ending of ['\n', '\r\n', '\r']) {
      const bytes = encoder.encode(STREAM.join(ending));
      const expected = parseWhole(bytes);
      for (let run = 0; run < 2000 / 3; run++) {
        const cuts = Array.from({ length: 1 + Math.floor(random() * 12) }, () =>
          Math.floor(random() * bytes.length),
        );
        cuts.sort((a, b) => a - b);
        assert.deepEqual(parseSplit(bytes, cuts), expected, `cuts ${cuts.join(',')}`);
      }
    }
  });

  test('byte-at-a-time feeding works', () => {
    const bytes = encoder.encode(STREAM.join('\n'));
    const offsets = Array.from({ length: bytes.length - 1 }, (_, i) => i + 1);
    assert.deepEqual(parseSplit(bytes, offsets), parseWhole(bytes));
  });

  test('an event without its terminating blank line is not emitted', () => {
    assert.deepEqual(parseWhole(encoder.encode('data: complete\n\ndata: partial')), [
      { event: 'message', data: 'complete' },
    ]);
  });

  test('a line longer than the limit is refused instead of buffered forever', () => {
    const parser = new SseParser({ maxLineLength: 1024 });
    assert.throws(() => parser.push(encoder.encode(`data: ${'x'.repeat(4096)}`)), /exceeded 1024 bytes/);
  });
});
