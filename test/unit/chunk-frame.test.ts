/**
 * A relayed chunk's text, edited on the upstream's own JSON, says exactly what
 * serializing the edited object would say; anything the text edit cannot do
 * safely falls back to serializing.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ChunkFrameEncoder } from '../../src/api/openai/chunk-frame.ts';
import { answerText } from '../../src/api/openai/model-swap.ts';
import type { ChatCompletionChunk } from '../../src/core/types.ts';
import { attachWireFrame, attachWireText, wireTextOf } from '../../src/core/wire-text.ts';

/** A chunk as the OpenAI adapter yields it: parsed, with its wire text. */
function received(text: string): ChatCompletionChunk {
  return attachWireText(JSON.parse(text) as ChatCompletionChunk, text);
}

/** What the relay said before it kept wire text: the object edited, then serialized. */
function serialized(text: string, model: string, keepUsage: boolean): unknown {
  const chunk = JSON.parse(text) as ChatCompletionChunk;
  chunk.model = model;
  if (!keepUsage) delete chunk.usage;
  return chunk;
}

const CONTENT =
  '{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini-2024-07-18",' +
  '"system_fingerprint":"fp_1","choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":null}],"usage":null}';

describe('ChunkFrameEncoder', () => {
  const cases: Array<[string, string, string, boolean]> = [
    ['model swapped, usage null cut (the last member)', CONTENT, 'fast', false],
    ['model swapped, usage null kept when asked for', CONTENT, 'fast', true],
    ['same model: the text as it came', CONTENT.replace('gpt-4o-mini-2024-07-18', 'fast'), 'fast', false],
    [
      'usage null as the first member',
      '{"usage":null,"id":"c","object":"chat.completion.chunk","created":1,"model":"up","choices":[]}',
      'asked',
      false,
    ],
    [
      'names that need escaping',
      CONTENT.replace('gpt-4o-mini-2024-07-18', 'org/m\\u00e9'),
      'my "quoted" \u00e9 model',
      false,
    ],
    [
      'a content string that quotes the member names',
      CONTENT.replace('"content":"Hi"', '"content":"{\\"model\\":\\"x\\",\\"usage\\":null}"'),
      'fast',
      false,
    ],
    [
      'a second model member (nested): serialized',
      CONTENT.replace('"delta":{', '"delta":{"model":"gpt-4o-mini-2024-07-18",'),
      'fast',
      false,
    ],
    ['whitespace after the colon: serialized', CONTENT.replace('"model":"', '"model": "'), 'fast', false],
    [
      'usage object on a content chunk, not asked for: serialized',
      CONTENT.replace('"usage":null', '"usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4}'),
      'fast',
      false,
    ],
  ];
  for (const [name, text, model, keepUsage] of cases) {
    test(name, () => {
      const chunk = received(text);
      const frame = new ChunkFrameEncoder(model, keepUsage).encode(chunk);
      assert.deepEqual(JSON.parse(frame), serialized(text, model, keepUsage));
      // The chunk is not changed by encoding it (the cache and the tally read it after).
      assert.deepEqual(JSON.parse(JSON.stringify(chunk)), JSON.parse(text));
    });
  }

  test('text is reused, not re-serialized, where the edit is safe', () => {
    const chunk = received(CONTENT);
    const frame = new ChunkFrameEncoder('fast', false).encode(chunk);
    assert.equal(frame, CONTENT.replace('"gpt-4o-mini-2024-07-18"', '"fast"').replace(',"usage":null', ''));
  });

  test('a chunk without wire text (another adapter) is serialized', () => {
    const chunk = JSON.parse(CONTENT) as ChatCompletionChunk;
    assert.equal(wireTextOf(chunk), undefined);
    assert.deepEqual(
      JSON.parse(new ChunkFrameEncoder('fast', false).encode(chunk)),
      serialized(CONTENT, 'fast', false),
    );
  });

  test('the bytes a chunk came in are relayed only when they say exactly what encoding would', () => {
    const sameModel = CONTENT.replace('gpt-4o-mini-2024-07-18', 'fast');
    const all: Array<[string, string, boolean]> = [
      ...cases.map(([, text, model, keepUsage]): [string, string, boolean] => [text, model, keepUsage]),
      [sameModel, 'fast', true],
      [sameModel.replace(',"usage":null', ''), 'fast', false],
      [
        sameModel.replace(
          '"usage":null',
          '"usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4}',
        ),
        'fast',
        true,
      ],
      [sameModel.replace('"content":"Hi"', '"content":"h\u00e9 \u4f60\u597d 🚀"'), 'fast', true],
    ];
    let relayed = 0;
    for (const [text, model, keepUsage] of all) {
      const bytes = Buffer.from(`data: ${text}\n\n`);
      const chunk = attachWireFrame(received(text), bytes);
      const encoder = new ChunkFrameEncoder(model, keepUsage);
      const frame = encoder.wireFrame(chunk);
      const expected = Buffer.from(`data: ${encoder.encode(chunk)}\n\n`);
      if (frame === undefined) assert.notDeepEqual(bytes, expected, `${text} could have been relayed`);
      else {
        relayed++;
        assert.equal(frame, bytes);
        assert.deepEqual(Buffer.from(frame), expected, text);
      }
    }
    assert.equal(relayed, 4, 'the chunks that go out as they came');
    // Without the bytes (a push that was not one whole event): always encoded.
    assert.equal(new ChunkFrameEncoder('fast', true).wireFrame(received(sameModel)), undefined);
  });

  test('one encoder follows a stream whose upstream model changes', () => {
    const encoder = new ChunkFrameEncoder('fast', true);
    for (const upstream of ['a', 'b', 'a']) {
      const text = CONTENT.replace('gpt-4o-mini-2024-07-18', upstream);
      assert.equal(JSON.parse(encoder.encode(received(text))).model, 'fast');
    }
  });
});

const ANSWER =
  '{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"gpt-4o-mini-2024-07-18",' +
  '"choices":[{"index":0,"message":{"role":"assistant","content":"Hi \\"model\\": there"},"finish_reason":"stop"}],' +
  '"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}';

describe('answerText (a whole JSON answer sent as the upstream wrote it)', () => {
  const answer = (text: string) => attachWireText(JSON.parse(text) as { model?: unknown }, text);
  const expected = (text: string, model: string) => ({ ...JSON.parse(text), model });

  test('the model swapped on the text, everything else as it came', () => {
    const text = answerText(answer(ANSWER), 'fast');
    assert.equal(text, ANSWER.replace('"gpt-4o-mini-2024-07-18"', '"fast"'));
    assert.deepEqual(JSON.parse(text!), expected(ANSWER, 'fast'));
  });

  test('the same model: the text itself; names that need escaping are escaped', () => {
    assert.equal(answerText(answer(ANSWER), 'gpt-4o-mini-2024-07-18'), ANSWER);
    assert.deepEqual(
      JSON.parse(answerText(answer(ANSWER), 'my "m" \u00e9')!),
      expected(ANSWER, 'my "m" \u00e9'),
    );
  });

  const unsafe: Array<[string, string]> = [
    ['whitespace after the colon', ANSWER.replace('"model":"', '"model": "')],
    ['a second model member', ANSWER.replace('"message":{', '"message":{"model":"gpt-4o-mini-2024-07-18",')],
    ['a model that is not a string', ANSWER.replace('"gpt-4o-mini-2024-07-18"', '7')],
  ];
  for (const [name, text] of unsafe) {
    test(`${name}: undefined (the caller serializes)`, () => {
      assert.equal(answerText(answer(text), 'fast'), undefined);
    });
  }

  test('an answer without wire text (another adapter, or built here): undefined', () => {
    assert.equal(answerText(JSON.parse(ANSWER) as { model?: unknown }, 'fast'), undefined);
  });
});
