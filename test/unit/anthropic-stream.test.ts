import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { GatewayError } from '../../src/core/errors.ts';
import type { ChatCompletionChunk, ChatRequest } from '../../src/core/types.ts';
import { AnthropicProvider } from '../../src/providers/anthropic/anthropic-provider.ts';
import { fromAnthropicMessage } from '../../src/providers/anthropic/anthropic-response.ts';
import { fromAnthropicStream } from '../../src/providers/anthropic/anthropic-stream.ts';
import type { AttemptContext } from '../../src/providers/types.ts';
import { type MockAnthropic, startMockAnthropic } from '../helpers/mock-anthropic.ts';

/** One exchange in the shape Anthropic documents: thinking, text (multi-byte), a tool call, pings. */
const EVENTS: Array<[string, unknown]> = [
  [
    'message_start',
    {
      type: 'message_start',
      message: {
        id: 'msg_01',
        type: 'message',
        role: 'assistant',
        model: 'claude-sonnet-4-5',
        content: [],
        stop_reason: null,
        stop_sequence: null,
        usage: {
          input_tokens: 472,
          cache_creation_input_tokens: 30,
          cache_read_input_tokens: 100,
          output_tokens: 2,
        },
      },
    },
  ],
  ['ping', { type: 'ping' }],
  [
    'content_block_start',
    { type: 'content_block_start', index: 0, content_block: { type: 'thinking', thinking: '' } },
  ],
  [
    'content_block_delta',
    { type: 'content_block_delta', index: 0, delta: { type: 'thinking_delta', thinking: 'Weather → tool.' } },
  ],
  [
    'content_block_delta',
    { type: 'content_block_delta', index: 0, delta: { type: 'signature_delta', signature: 'EqQB' } },
  ],
  ['content_block_stop', { type: 'content_block_stop', index: 0 }],
  [
    'content_block_start',
    { type: 'content_block_start', index: 1, content_block: { type: 'text', text: '' } },
  ],
  [
    'content_block_delta',
    { type: 'content_block_delta', index: 1, delta: { type: 'text_delta', text: 'Héllo 🌍' } },
  ],
  [
    'content_block_delta',
    { type: 'content_block_delta', index: 1, delta: { type: 'text_delta', text: ', checking.' } },
  ],
  ['content_block_stop', { type: 'content_block_stop', index: 1 }],
  [
    'content_block_start',
    {
      type: 'content_block_start',
      index: 2,
      content_block: { type: 'tool_use', id: 'toolu_01', name: 'get_weather', input: {} },
    },
  ],
  [
    'content_block_delta',
    { type: 'content_block_delta', index: 2, delta: { type: 'input_json_delta', partial_json: '' } },
  ],
  [
    'content_block_delta',
    {
      type: 'content_block_delta',
      index: 2,
      delta: { type: 'input_json_delta', partial_json: '{"location": "Pa' },
    },
  ],
  [
    'content_block_delta',
    { type: 'content_block_delta', index: 2, delta: { type: 'input_json_delta', partial_json: 'ris"}' } },
  ],
  ['content_block_stop', { type: 'content_block_stop', index: 2 }],
  ['ping', { type: 'ping' }],
  [
    'message_delta',
    {
      type: 'message_delta',
      delta: { stop_reason: 'tool_use', stop_sequence: null },
      usage: { output_tokens: 89 },
    },
  ],
  ['message_stop', { type: 'message_stop' }],
];

const STREAM = Buffer.from(
  EVENTS.map(([name, data]) => `event: ${name}\ndata: ${JSON.stringify(data)}\n\n`).join(''),
);

/** The same exchange, answered without streaming. */
const MESSAGE = {
  id: 'msg_01',
  type: 'message' as const,
  role: 'assistant' as const,
  model: 'claude-sonnet-4-5',
  content: [
    { type: 'thinking' as const, thinking: 'Weather → tool.', signature: 'EqQB' },
    { type: 'text' as const, text: 'Héllo 🌍, checking.' },
    { type: 'tool_use' as const, id: 'toolu_01', name: 'get_weather', input: { location: 'Paris' } },
  ],
  stop_reason: 'tool_use' as const,
  stop_sequence: null,
  usage: {
    input_tokens: 472,
    cache_creation_input_tokens: 30,
    cache_read_input_tokens: 100,
    output_tokens: 89,
  },
};

async function* pieces(buffers: Buffer[]): AsyncGenerator<Uint8Array> {
  for (const b of buffers) yield b;
}

async function collect(buffers: Buffer[]): Promise<ChatCompletionChunk[]> {
  const out: ChatCompletionChunk[] = [];
  for await (const chunk of fromAnthropicStream(pieces(buffers))) out.push(chunk);
  return out;
}

/** Chunks without the wall-clock `created`. */
function stable(chunks: ChatCompletionChunk[]): unknown[] {
  return chunks.map(({ created: _created, ...rest }) => rest);
}

describe('Anthropic SSE → canonical chunks', () => {
  test('a recorded-shape stream translates event by event', async () => {
    const chunks = await collect([STREAM]);
    const base = { id: 'msg_01', object: 'chat.completion.chunk', model: 'claude-sonnet-4-5' };
    const delta = (d: object, finish: string | null = null) => ({
      ...base,
      choices: [{ index: 0, delta: d, finish_reason: finish }],
    });
    assert.deepEqual(stable(chunks), [
      delta({ role: 'assistant', content: '' }),
      delta({ reasoning_content: 'Weather → tool.' }),
      delta({ reasoning_signature: 'EqQB' }),
      delta({ content: 'Héllo 🌍' }),
      delta({ content: ', checking.' }),
      delta({
        tool_calls: [
          { index: 0, id: 'toolu_01', type: 'function', function: { name: 'get_weather', arguments: '' } },
        ],
      }),
      delta({ tool_calls: [{ index: 0, function: { arguments: '{"location": "Pa' } }] }),
      delta({ tool_calls: [{ index: 0, function: { arguments: 'ris"}' } }] }),
      delta({}, 'tool_calls'),
      {
        ...base,
        choices: [],
        usage: {
          prompt_tokens: 602,
          completion_tokens: 89,
          total_tokens: 691,
          prompt_tokens_details: { cached_tokens: 100 },
          cache_creation_input_tokens: 30,
        },
      },
    ]);
  });

  test('split at every byte boundary (inside UTF-8 characters and `event:` names) gives identical chunks', async () => {
    const whole = stable(await collect([STREAM]));
    const globe = STREAM.indexOf(Buffer.from('🌍'));
    const eventField = STREAM.indexOf(Buffer.from('event: ping'));
    assert.ok(globe > 0 && eventField > 0);
    const mustCover = [globe + 1, globe + 2, globe + 3, eventField + 2, eventField + 4];
    const covered = new Set<number>();
    for (let i = 1; i < STREAM.length; i++) {
      covered.add(i);
      assert.deepEqual(
        stable(await collect([STREAM.subarray(0, i), STREAM.subarray(i)])),
        whole,
        `split at ${i}`,
      );
    }
    for (const offset of mustCover) assert.ok(covered.has(offset));
    const bytes = Array.from({ length: STREAM.length }, (_, i) => STREAM.subarray(i, i + 1));
    assert.deepEqual(stable(await collect(bytes)), whole, 'one byte at a time');
    const crlf = Buffer.from(STREAM.toString('utf8').replaceAll('\n', '\r\n'));
    const crlfBytes = Array.from({ length: crlf.length }, (_, i) => crlf.subarray(i, i + 1));
    assert.deepEqual(stable(await collect(crlfBytes)), whole, 'CRLF line endings, one byte at a time');
  });

  test('usage of the stream equals usage of the non-streamed answer to the same exchange', async () => {
    const chunks = await collect([STREAM]);
    assert.deepEqual(chunks.at(-1)?.usage, fromAnthropicMessage(MESSAGE).usage);
  });

  test('incremental: a chunk is yielded before the rest of the stream exists', async () => {
    let release!: () => void;
    const released = new Promise<void>((resolve) => {
      release = resolve;
    });
    let sentRest = false;
    const firstEvent = STREAM.subarray(0, STREAM.indexOf('\n\n') + 2);
    async function* source(): AsyncGenerator<Uint8Array> {
      yield firstEvent;
      await released;
      sentRest = true;
      yield STREAM.subarray(firstEvent.length);
    }
    const iterator = fromAnthropicStream(source());
    const first = await iterator.next();
    assert.equal(first.done, false);
    assert.equal(first.value?.choices[0]?.delta.role, 'assistant');
    assert.equal(sentRest, false);
    release();
    let count = 1;
    for await (const _ of { [Symbol.asyncIterator]: () => iterator }) count++;
    assert.equal(count, 10);
  });

  test('an error event mid-stream throws a retryable GatewayError after the chunks before it', async () => {
    const cut = STREAM.indexOf(Buffer.from('event: content_block_stop'));
    const error = Buffer.from(
      'event: error\ndata: {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}\n\n',
    );
    const seen: ChatCompletionChunk[] = [];
    await assert.rejects(
      async () => {
        for await (const chunk of fromAnthropicStream(pieces([STREAM.subarray(0, cut), error])))
          seen.push(chunk);
      },
      (e: unknown) => GatewayError.is(e) && e.code === 'upstream_overloaded' && e.retryable,
    );
    assert.equal(seen.length, 3);
  });

  test('a stream cut before message_stop, or garbage, is a bad upstream response', async () => {
    const cut = STREAM.indexOf(Buffer.from('event: message_delta'));
    await assert.rejects(
      collect([STREAM.subarray(0, cut)]),
      (e: unknown) => GatewayError.is(e) && e.code === 'upstream_bad_response',
    );
    await assert.rejects(
      collect([Buffer.from('event: content_block_delta\ndata: {"type":"content_bl\n\n')]),
      (e: unknown) => GatewayError.is(e) && e.code === 'upstream_bad_response',
    );
  });
});

describe('AnthropicProvider against the mock Anthropic server', () => {
  let mock: MockAnthropic;
  let provider: AnthropicProvider;
  const ctx = (): AttemptContext => ({
    signal: new AbortController().signal,
    requestId: 'req-test',
    timeouts: { connectMs: 2000, firstByteMs: 5000, totalMs: 10_000, idleMs: 5000 },
  });
  before(async () => {
    mock = await startMockAnthropic({ requireApiKey: 'sk-ant-test-key-123' });
    provider = new AnthropicProvider({ name: 'claude', baseUrl: mock.url, apiKey: 'sk-ant-test-key-123' });
  });
  after(async () => {
    await provider.close();
    await mock.close();
  });

  const request: ChatRequest = {
    model: 'claude-sonnet-4-5',
    messages: [
      { role: 'system', content: 'You are terse.' },
      { role: 'user', content: 'hello there, how are you' },
    ],
  };

  test('streamed and non-streamed usage of the same request are equal', async () => {
    const completion = await provider.chat(request, ctx());
    let usage: ChatCompletionChunk['usage'];
    let text = '';
    for await (const chunk of await provider.streamChat(request, ctx())) {
      text += chunk.choices[0]?.delta.content ?? '';
      if (chunk.usage) usage = chunk.usage;
    }
    assert.equal(completion.choices[0]?.message.content, 'Echo: hello there, how are you');
    assert.equal(text, 'Echo: hello there, how are you');
    // system (3 words + 3) + user (5 words + 3); output = one frame per word.
    assert.equal(completion.usage?.prompt_tokens, 14);
    assert.equal(completion.usage?.completion_tokens, 6);
    assert.deepEqual(usage, completion.usage);
    const sent = mock.requests.at(-1)!;
    assert.equal(sent.headers['x-api-key'], 'sk-ant-test-key-123');
    assert.equal(sent.headers['anthropic-version'], '2023-06-01');
    assert.deepEqual(sent.body, {
      model: 'claude-sonnet-4-5',
      messages: [{ role: 'user', content: 'hello there, how are you' }],
      max_tokens: 4096,
      system: 'You are terse.',
      stream: true,
    });
  });

  test('passthrough: raw Messages body in, raw message and raw events out', async () => {
    const body = {
      model: 'claude-haiku-4-5',
      max_tokens: 50,
      messages: [{ role: 'user', content: 'raw please' }],
    };
    const message = await provider.messages(body, ctx());
    assert.equal(message['type'], 'message');
    assert.deepEqual(message['content'], [{ type: 'text', text: 'Echo: raw please' }]);
    const names: string[] = [];
    for await (const event of await provider.streamMessages(body, ctx())) names.push(event.event);
    assert.deepEqual(names, [
      'message_start',
      'ping',
      'content_block_start',
      'content_block_delta',
      'content_block_delta',
      'content_block_delta',
      'content_block_stop',
      'message_delta',
      'message_stop',
    ]);
    mock.enqueue({ kind: 'errorInStream', afterFrames: 1 });
    await assert.rejects(
      async () => {
        for await (const _ of await provider.streamMessages(body, ctx()));
      },
      (e: unknown) => GatewayError.is(e) && e.code === 'upstream_overloaded',
    );
    mock.enqueue({ kind: 'status', status: 529 });
    await assert.rejects(
      provider.messages(body, ctx()),
      (e: unknown) => GatewayError.is(e) && e.code === 'upstream_overloaded',
    );
  });

  async function streamText(content: string): Promise<string> {
    let text = '';
    for await (const chunk of await provider.streamChat(
      { model: 'claude-sonnet-4-5', messages: [{ role: 'user', content }] },
      ctx(),
    )) {
      text += chunk.choices[0]?.delta.content ?? '';
    }
    return text;
  }

  test('odd but legal SSE from the real server: split bytes, CRLF, comments, multi-line data, no space', async () => {
    // A cut at every byte offset: inside 'é' (2 bytes), '🌍' (4 bytes) and every field name.
    const cuts = Array.from({ length: 1500 }, (_, i) => i + 1).join('|');
    assert.equal(await streamText(`héllo 🌍 wörld [mock:split-at=${cuts}]`), 'Echo: héllo 🌍 wörld');
    assert.equal(await streamText('a b [mock:line-ending=crlf]'), 'Echo: a b');
    assert.equal(await streamText('a b [mock:line-ending=cr]'), 'Echo: a b');
    for (const variant of ['comments', 'multi-line-data', 'no-space', 'garbage']) {
      assert.equal(await streamText(`x y [mock:malformed-sse=${variant}]`), 'Echo: x y', variant);
    }
  });

  test('broken streams are upstream failures: invalid JSON, no message_stop, reset mid-stream', async () => {
    for (const directive of ['malformed-sse=invalid-json', 'malformed-sse=no-done', 'reset-mid-stream=1']) {
      await assert.rejects(
        streamText(`x [mock:${directive}]`),
        (e: unknown) => GatewayError.is(e) && e.retryable && e.code.startsWith('upstream_'),
        directive,
      );
    }
    await assert.rejects(
      provider.chat({ model: 'm', messages: [{ role: 'user', content: 'x [mock:malformed-json]' }] }, ctx()),
      (e: unknown) => GatewayError.is(e) && e.code === 'upstream_bad_response',
    );
  });

  test('hang, reset and redirect are retryable upstream failures; the attempt is abortable', async () => {
    const quick: AttemptContext = {
      ...ctx(),
      timeouts: { connectMs: 2000, firstByteMs: 300, totalMs: 5000, idleMs: 300 },
    };
    const ask = (content: string, c: AttemptContext = ctx()) =>
      provider.chat({ model: 'm', messages: [{ role: 'user', content }] }, c);
    await assert.rejects(
      ask('x [mock:hang]', quick),
      (e: unknown) => GatewayError.is(e) && e.code === 'upstream_timeout',
    );
    await assert.rejects(ask('x [mock:reset]'), (e: unknown) => GatewayError.is(e) && e.retryable);
    await assert.rejects(
      ask('x [mock:redirect]'),
      (e: unknown) => GatewayError.is(e) && e.code === 'upstream_bad_response',
    );
    const controller = new AbortController();
    const before = mock.requests.length;
    const pending = ask('x [mock:hang]', { ...ctx(), signal: controller.signal });
    const [hung] = (await mock.waitForRequests(before + 1)).slice(before);
    controller.abort(new Error('client went away'));
    await assert.rejects(pending, /client went away/);
    assert.equal((await mock.waitForAbort({ requestId: hung!.id })).clientAborted, true);
  });

  test('embeddings are refused as a final 400-class error; check() lists models', async () => {
    await assert.rejects(
      provider.embed({ model: 'claude-x', input: 'hi' }, ctx()),
      (e: unknown) => GatewayError.is(e) && e.status === 400 && !e.retryable,
    );
    await provider.check(new AbortController().signal);
    assert.equal(mock.requests.at(-1)?.path, '/v1/models');
  });

  test('a wrong key is an auth error that never echoes the key', async () => {
    const wrong = new AnthropicProvider({ name: 'bad', baseUrl: mock.url, apiKey: 'sk-ant-wrong-key-456' });
    try {
      await assert.rejects(
        wrong.chat(request, ctx()),
        (e: unknown) =>
          GatewayError.is(e) && e.code === 'upstream_auth_error' && !e.message.includes('sk-ant'),
      );
    } finally {
      await wrong.close();
    }
  });
});
