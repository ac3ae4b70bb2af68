import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { type SseEvent, SseParser } from '../../src/providers/sse.ts';

const encoder = new TextEncoder();

/**
 * The events without the bytes they came in (`frame`, set only for a push that was one whole
 * event), after checking each frame is exactly the event as it would be written again.
 */
function plain(events: SseEvent[]): SseEvent[] {
  return events.map(({ frame, ...event }) => {
    if (frame !== undefined) {
      assert.deepEqual(Buffer.from(frame), Buffer.from(`data: ${event.data}\n\n`), 'frame');
      assert.equal(event.event, 'message');
    }
    return event;
  });
}

function parseWhole(bytes: Uint8Array): SseEvent[] {
  const parser = new SseParser();
  return plain([...parser.push(bytes), ...parser.end()]);
}

function parseSplit(bytes: Uint8Array, offsets: number[]): SseEvent[] {
  const parser = new SseParser();
  const events: SseEvent[] = [];
  let start = 0;
  for (const offset of [...offsets, bytes.length]) {
    events.push(...parser.push(bytes.subarray(start, offset)));
    start = offset;
  }
  return plain([...events, ...parser.end()]);
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

  test('a push that is one whole `data: …` event keeps its bytes; any other push is scanned, with the same events', () => {
    const parser = new SseParser();
    const one = encoder.encode('data: {"text":"héllo 你好 🚀"}\n\n');
    const [whole] = parser.push(one);
    assert.equal(whole?.frame, one);
    assert.equal(whole?.data, '{"text":"héllo 你好 🚀"}');
    // Two events in one push, a comment, no space after the colon, CRLF: scanned, no frame.
    for (const text of [
      'data: a\n\ndata: b\n\n',
      ': ping\n\n',
      'data:x\n\n',
      'data: x\r\n\r\n',
      'event: e\ndata: x\n\n',
    ]) {
      for (const event of parser.push(encoder.encode(text))) assert.equal(event.frame, undefined, text);
    }
    // A whole event pushed after half a line is that line's end: scanned.
    assert.deepEqual(parser.push(encoder.encode('data: par')), []);
    assert.deepEqual(plain(parser.push(encoder.encode('data: x\n\n'))), [
      { event: 'message', data: 'pardata: x' },
    ]);
    // An empty push between events changes nothing: the next whole event is still read whole.
    assert.deepEqual(parser.push(new Uint8Array(0)), []);
    assert.ok(parser.push(encoder.encode('data: y\n\n'))[0]?.frame !== undefined);
    // The last event id carries over to a whole-event push, as to any event.
    parser.push(encoder.encode('id: 9\n\n'));
    const [withId] = parser.push(encoder.encode('data: after\n\n'));
    assert.equal(withId?.id, '9');
    assert.ok(withId?.frame !== undefined);
  });

  test('a whole event that is not valid UTF-8 is read as the scan reads it (U+FFFD), without its bytes', () => {
    const bytes = Buffer.concat([
      encoder.encode('data: a'),
      Buffer.from([0xff, 0xc3]),
      encoder.encode('b\n\n'),
    ]);
    const [event] = new SseParser().push(bytes);
    assert.equal(event?.frame, undefined);
    assert.deepEqual(plain([event!]), parseSplit(bytes, [1]));
    assert.equal(event?.data, 'a\ufffd\ufffdb');
  });

  test('a byte order mark is dropped at the start of the stream only, whole-event pushes or not', () => {
    const bom = [0xef, 0xbb, 0xbf];
    const first = Buffer.concat([Buffer.from(bom), encoder.encode('data: x\n\n')]);
    assert.deepEqual(parseWhole(first), [{ event: 'message', data: 'x' }]);
    // After a first event (read whole), a BOM is a character: `\ufeffdata` is an unknown field.
    const parser = new SseParser();
    const events = [...parser.push(encoder.encode('data: x\n\n')), ...parser.push(first)];
    assert.deepEqual(plain(events), [{ event: 'message', data: 'x' }]);
    assert.deepEqual(parseWhole(Buffer.concat([encoder.encode('data: x\n\n'), first])), plain(events));
  });

  test('canonical events pushed whole, split and merged at random: the same events, frames exactly on whole pushes', () => {
    const random = prng(7);
    const words = ['héllo', '你好', '🚀', '"quoted"', '\\', 'x', '{}', 'tab\\t', ''];
    for (let run = 0; run < 300; run++) {
      const data = Array.from({ length: 1 + Math.floor(random() * 8) }, () =>
        Array.from(
          { length: Math.floor(random() * 5) },
          () => words[Math.floor(random() * words.length)],
        ).join(' '),
      );
      const frames = data.map((d) => encoder.encode(`data: ${d}\n\n`));
      const parser = new SseParser();
      const events: SseEvent[] = [];
      let pending: Uint8Array[] = [];
      for (const frame of frames) {
        const roll = random();
        if (roll < 0.6) {
          // Whole, on its own.
          events.push(...parser.push(Buffer.concat([...pending, frame])));
          pending = [];
        } else if (roll < 0.8) {
          pending.push(frame); // merged with the next push
        } else {
          const cut = Math.floor(random() * frame.length);
          events.push(...parser.push(Buffer.concat([...pending, frame.subarray(0, cut)])));
          pending = [frame.subarray(cut)];
        }
      }
      events.push(...parser.push(Buffer.concat(pending)), ...parser.end());
      assert.deepEqual(
        plain(events).map((e) => e.data),
        data,
        `run ${run}`,
      );
    }
  });

  test('a line longer than the limit is refused instead of buffered forever', () => {
    const parser = new SseParser({ maxLineLength: 1024 });
    assert.throws(() => parser.push(encoder.encode(`data: ${'x'.repeat(4096)}`)), /exceeded 1024 bytes/);
  });
});
