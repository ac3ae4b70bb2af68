import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { GatewayError } from '../../src/core/errors.ts';
import type { ChatCompletionChunk } from '../../src/core/types.ts';
import { toGeminiRequest } from '../../src/providers/gemini/gemini-request.ts';
import { fromGeminiResponse } from '../../src/providers/gemini/gemini-response.ts';
import { GeminiChunkReader } from '../../src/providers/gemini/gemini-stream.ts';
import type { GeminiResponse } from '../../src/providers/gemini/gemini-wire.ts';
import { SseParser } from '../../src/providers/sse.ts';
import { type MockGemini, startMockGemini } from '../helpers/mock-gemini.ts';

const CREATED = 1_700_000_000;

/** A stream as Gemini sends it: CRLF framing, whole responses per frame, usage complete on the last. */
const FRAMES: GeminiResponse[] = [
  {
    candidates: [{ content: { role: 'model', parts: [{ text: 'Thinking…', thought: true }] }, index: 0 }],
    usageMetadata: { promptTokenCount: 9, totalTokenCount: 9 },
    responseId: 'r1',
  },
  {
    candidates: [{ content: { role: 'model', parts: [{ text: 'Héllo wörld 🌍' }] }, index: 0 }],
    usageMetadata: { promptTokenCount: 9, totalTokenCount: 9 },
    responseId: 'r1',
  },
  {
    candidates: [
      {
        content: {
          role: 'model',
          parts: [{ text: ', ça va?' }, { functionCall: { name: 'lookup', args: { q: 'é' } } }],
        },
        finishReason: 'STOP',
        index: 0,
      },
    ],
    usageMetadata: {
      promptTokenCount: 9,
      candidatesTokenCount: 6,
      thoughtsTokenCount: 4,
      cachedContentTokenCount: 2,
      totalTokenCount: 19,
    },
    responseId: 'r1',
  },
];
const BYTES = Buffer.from(FRAMES.map((f) => `data: ${JSON.stringify(f)}\r\n\r\n`).join(''));

/** Bytes → chunks as the adapter reads them: the events of each piece through the reader, then its end. */
function translate(
  pieces: Uint8Array[],
  reader = new GeminiChunkReader({ model: 'gemini-x', created: CREATED }),
) {
  const parser = new SseParser();
  const out: ChatCompletionChunk[] = [];
  for (const piece of pieces) for (const event of parser.push(piece)) reader.read(event, out);
  for (const event of parser.end()) reader.read(event, out);
  reader.end(out);
  return out;
}

describe('Gemini SSE → canonical chunks', () => {
  test('translates deltas, tool calls, finish and the final usage chunk', () => {
    const chunks = translate([BYTES]);
    assert.deepEqual(
      chunks.map((c) => [c.choices, c.usage]),
      [
        // A thought-only frame still opens the answer (role first, as OpenAI does): the client sees life early.
        [
          [{ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: null, logprobs: null }],
          undefined,
        ],
        [
          [
            {
              index: 0,
              delta: { content: 'Héllo wörld 🌍' },
              finish_reason: null,
              logprobs: null,
            },
          ],
          undefined,
        ],
        [
          [
            {
              index: 0,
              delta: {
                content: ', ça va?',
                tool_calls: [
                  {
                    index: 0,
                    id: 'call_0',
                    type: 'function',
                    function: { name: 'lookup', arguments: '{"q":"é"}' },
                  },
                ],
              },
              finish_reason: 'tool_calls',
              logprobs: null,
            },
          ],
          undefined,
        ],
        [
          [],
          {
            prompt_tokens: 9,
            completion_tokens: 10,
            total_tokens: 19,
            prompt_tokens_details: { cached_tokens: 2 },
            completion_tokens_details: { reasoning_tokens: 4 },
          },
        ],
      ],
    );
    for (const chunk of chunks) {
      assert.equal(chunk.id, 'chatcmpl-r1');
      assert.equal(chunk.object, 'chat.completion.chunk');
      assert.equal(chunk.model, 'gemini-x');
    }
  });

  test('the same bytes split at every boundary give identical chunks', () => {
    const whole = translate([BYTES]);
    const text = BYTES.toString('latin1');
    // The boundaries that matter most are covered by "every": prove they are in range.
    const insideEmoji = BYTES.indexOf(Buffer.from('🌍')) + 2;
    const insideField = text.indexOf('data:', 10) + 2;
    assert.ok(insideEmoji > 2 && insideField > 2 && insideEmoji < BYTES.length && insideField < BYTES.length);
    for (let cut = 1; cut < BYTES.length; cut++) {
      assert.deepEqual(
        translate([BYTES.subarray(0, cut), BYTES.subarray(cut)]),
        whole,
        `split at byte ${cut}`,
      );
    }
    const oneByteAtATime = Array.from({ length: BYTES.length }, (_, i) => BYTES.subarray(i, i + 1));
    assert.deepEqual(translate(oneByteAtATime), whole);
  });

  test('a prompt blocked mid-stream ends the stream with content_filter', () => {
    const blocked = Buffer.from(
      `data: ${JSON.stringify({ promptFeedback: { blockReason: 'SAFETY' }, usageMetadata: { promptTokenCount: 3, totalTokenCount: 3 } })}\r\n\r\n`,
    );
    const chunks = translate([blocked]);
    assert.equal(chunks[0]?.choices[0]?.finish_reason, 'content_filter');
    assert.deepEqual(chunks[1]?.usage, { prompt_tokens: 3, completion_tokens: 0, total_tokens: 3 });
  });

  test('a stream that ends before any finishReason is a bad upstream response', () => {
    const cut = Buffer.from(`data: ${JSON.stringify(FRAMES[1])}\r\n\r\n`);
    assert.throws(
      () => translate([cut]),
      (error: unknown) => GatewayError.is(error) && error.code === 'upstream_bad_response',
    );
  });

  test('an error frame mid-stream maps like an HTTP error', () => {
    const bytes = Buffer.from(
      `data: {"error":{"code":503,"message":"The model is overloaded.","status":"UNAVAILABLE"}}\r\n\r\n`,
    );
    assert.throws(
      () => translate([bytes], new GeminiChunkReader({ model: 'm' })),
      (error: unknown) => GatewayError.is(error) && error.code === 'upstream_overloaded',
    );
  });

  test('invalid JSON in a frame is a bad upstream response', () => {
    assert.throws(
      () => translate([Buffer.from('data: {"candidates":[\r\n\r\n')], new GeminiChunkReader({ model: 'm' })),
      (error: unknown) => GatewayError.is(error) && error.code === 'upstream_bad_response',
    );
  });
});

describe('streamed vs non-streamed answer of the same exchange (mock Gemini server)', () => {
  let gemini: MockGemini;
  before(async () => {
    gemini = await startMockGemini();
  });
  after(() => gemini.close());

  async function exchange(
    body: unknown,
  ): Promise<{ streamed: ChatCompletionChunk[]; whole: GeminiResponse }> {
    const post = (path: string) =>
      fetch(`${gemini.url}/v1beta/models/gemini-x:${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
    const stream = await post('streamGenerateContent?alt=sse');
    const streamed = translate([new Uint8Array(await stream.arrayBuffer())]);
    const whole = (await (await post('generateContent')).json()) as GeminiResponse;
    return { streamed, whole };
  }

  for (const [name, messages, tools] of [
    ['text', [{ role: 'user', content: 'one two three four' }], undefined],
    [
      'tool call',
      [{ role: 'user', content: 'weather?' }],
      [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object' } } }],
    ],
  ] as const) {
    test(`${name}: same usage, same content, same tool call ids`, async () => {
      const request = toGeminiRequest({
        model: 'gemini-x',
        messages: [{ role: 'system', content: 'Be brief' }, ...messages],
        ...(tools ? { tools: [...tools] } : {}),
      });
      const { streamed, whole } = await exchange(request);
      const completion = fromGeminiResponse(whole, 'gemini-x', CREATED);
      const usageChunk = streamed[streamed.length - 1];
      assert.deepEqual(usageChunk?.choices, []);
      assert.deepEqual(usageChunk?.usage, completion.usage);
      assert.ok((completion.usage?.prompt_tokens ?? 0) > 0);
      const text = streamed.map((c) => c.choices[0]?.delta.content ?? '').join('');
      assert.equal(text, completion.choices[0]?.message.content ?? '');
      const calls = streamed.flatMap((c) => c.choices[0]?.delta.tool_calls ?? []);
      assert.deepEqual(
        calls.map((c) => [c.id, c.function?.name, c.function?.arguments]),
        (completion.choices[0]?.message.tool_calls ?? []).map((c) => [
          c.id,
          c.function.name,
          c.function.arguments,
        ]),
      );
      const finish = streamed.map((c) => c.choices[0]?.finish_reason).find(Boolean);
      assert.equal(finish, completion.choices[0]?.finish_reason);
    });
  }
});

test('good frames before an error frame in the same read are delivered before the error', () => {
  const bytes = Buffer.from(
    `data: ${JSON.stringify(FRAMES[1])}\r\n\r\ndata: {"error":{"code":500,"message":"boom","status":"INTERNAL"}}\r\n\r\n`,
  );
  // The reader appends the good frame's chunks, then throws for the error frame: the stream
  // (upstream-event-stream.ts) delivers what was appended before the failure.
  const reader = new GeminiChunkReader({ model: 'm' });
  const chunks: ChatCompletionChunk[] = [];
  const [good, bad] = new SseParser().push(bytes);
  reader.read(good!, chunks);
  assert.equal(chunks[0]?.choices[0]?.delta.content, 'Héllo wörld 🌍');
  assert.throws(
    () => reader.read(bad!, chunks),
    (error: unknown) => GatewayError.is(error) && error.code === 'upstream_error' && error.message === 'boom',
  );
});
