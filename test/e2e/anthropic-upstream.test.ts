/**
 * The official openai SDK → gateway (a `type: anthropic` provider) → mock Anthropic.
 *
 * Error statuses the client sees, by design (src/core/errors.ts):
 * 400 → 400 (BadRequestError; `context_length_exceeded` when the prompt is too long),
 * 401/403 → 502: the upstream rejected the *gateway's* credentials, the client's request
 * was fine, so it is a bad-gateway failure with a generic message (never the key);
 * 404 → 404, 413 → 413, 429 → 429 (RateLimitError, Retry-After relayed),
 * 500 → 502, 529 overloaded → 503.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import OpenAI from 'openai';
import { registerSecret, startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { type MockAnthropic, startMockAnthropic } from '../helpers/mock-anthropic.ts';

const PROVIDER_KEY = `sk-ant-CANARY-${process.pid}-e2e-anthropic`;
const PNG_1PX =
  'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==';

describe('openai SDK → gateway → Anthropic upstream', () => {
  let mock: MockAnthropic;
  let gw: TestGateway;
  let client: OpenAI;

  before(async () => {
    registerSecret(PROVIDER_KEY);
    mock = await startMockAnthropic({ requireApiKey: PROVIDER_KEY });
    gw = await startTestGateway({
      config: {
        providers: { claude: { type: 'anthropic', api_key: PROVIDER_KEY, base_url: mock.url } },
        models: {
          // One fault after another on one target: a breaker would (rightly) open and answer 503.
          claude: {
            retries: { max: 0 },
            circuit_breaker: { enabled: false },
            targets: [{ provider: 'claude', model: 'claude-sonnet-4-5' }],
          },
        },
      },
    });
    client = new OpenAI({ baseURL: gw.baseUrl, apiKey: gw.masterKey, maxRetries: 0 });
  });
  after(async () => {
    await gw.close();
    await mock.close();
  });

  test('chat completion: translated request, translated answer, usage', async () => {
    const completion = await client.chat.completions.create({
      model: 'claude',
      messages: [
        { role: 'system', content: 'Be brief.' },
        { role: 'user', content: 'hello from the sdk' },
      ],
      max_tokens: 100,
      stop: ['\n\n'],
      user: 'end-user-7',
    });
    assert.equal(completion.model, 'claude');
    assert.equal(completion.choices[0]?.message.content, 'Echo: hello from the sdk');
    assert.equal(completion.choices[0]?.finish_reason, 'stop');
    assert.equal(completion.usage?.prompt_tokens, 2 + 3 + 4 + 3);
    assert.equal(completion.usage?.completion_tokens, 5);
    const sent = mock.requests.at(-1)!;
    assert.equal(sent.path, '/v1/messages');
    assert.deepEqual(sent.body, {
      model: 'claude-sonnet-4-5',
      messages: [{ role: 'user', content: 'hello from the sdk' }],
      max_tokens: 100,
      system: 'Be brief.',
      stop_sequences: ['\n\n'],
      metadata: { user_id: 'end-user-7' },
      stream: false,
    });
  });

  test('stream: the first delta reaches the client before the upstream finished; usage as non-streamed', async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    mock.enqueue({ gate, frames: 6 });
    const before = mock.requests.length;
    const stream = await client.chat.completions.create({
      model: 'claude',
      stream: true,
      stream_options: { include_usage: true },
      messages: [{ role: 'user', content: 'stream me please' }],
    });
    const iterator = stream[Symbol.asyncIterator]();
    let text = '';
    while (text === '') {
      const next = await iterator.next();
      assert.equal(next.done, false, 'stream ended before any content');
      text += next.value.choices[0]?.delta.content ?? '';
    }
    const upstream = mock.requests[before]!;
    assert.equal(upstream.completedAt, undefined, 'the upstream is still held at the gate');
    release();
    let usage: OpenAI.CompletionUsage | null | undefined;
    let finish: string | null | undefined;
    for (let next = await iterator.next(); !next.done; next = await iterator.next()) {
      text += next.value.choices[0]?.delta.content ?? '';
      finish = next.value.choices[0]?.finish_reason ?? finish;
      if (next.value.usage) usage = next.value.usage;
    }
    assert.equal(text, 'Echo: stream me please lorem ipsum');
    assert.equal(finish, 'stop');
    mock.enqueue({ frames: 6 });
    const plain = await client.chat.completions.create({
      model: 'claude',
      messages: [{ role: 'user', content: 'stream me please' }],
    });
    assert.equal(usage?.prompt_tokens, plain.usage?.prompt_tokens);
    assert.equal(usage?.completion_tokens, plain.usage?.completion_tokens);
    assert.equal(usage?.completion_tokens, 6);
  });

  test('tool call round trip, streamed and not', async () => {
    const tools: OpenAI.ChatCompletionTool[] = [
      {
        type: 'function',
        function: {
          name: 'get_weather',
          description: 'Current weather',
          parameters: { type: 'object', properties: { location: { type: 'string' } } },
        },
      },
    ];
    const question: OpenAI.ChatCompletionMessageParam = { role: 'user', content: 'weather in Paris?' };
    const first = await client.chat.completions.create({ model: 'claude', messages: [question], tools });
    const call = first.choices[0]?.message.tool_calls?.[0];
    assert.equal(first.choices[0]?.finish_reason, 'tool_calls');
    assert.ok(call && call.type === 'function');
    assert.equal(call.function.name, 'get_weather');
    assert.deepEqual(JSON.parse(call.function.arguments), { location: 'Paris', unit: 'celsius' });
    assert.deepEqual((mock.requests.at(-1)!.body as { tools: unknown }).tools, [
      {
        name: 'get_weather',
        description: 'Current weather',
        input_schema: { type: 'object', properties: { location: { type: 'string' } } },
      },
    ]);

    const stream = await client.chat.completions.create({
      model: 'claude',
      messages: [question],
      tools,
      stream: true,
    });
    let args = '';
    let streamedId: string | undefined;
    for await (const chunk of stream) {
      const delta = chunk.choices[0]?.delta.tool_calls?.[0];
      if (delta?.id) streamedId = delta.id;
      args += delta?.function?.arguments ?? '';
    }
    assert.ok(streamedId?.startsWith('toolu_'));
    assert.deepEqual(JSON.parse(args), { location: 'Paris', unit: 'celsius' });

    // The mock refuses a tool_result whose id is not a tool_use of the previous turn.
    const second = await client.chat.completions.create({
      model: 'claude',
      tools,
      messages: [
        question,
        first.choices[0]!.message,
        { role: 'tool', tool_call_id: call.id, content: '18 degrees and sunny' },
      ],
    });
    assert.equal(second.choices[0]?.message.content, 'Echo: 18 degrees and sunny');
    const sent = mock.requests.at(-1)?.body as { messages: unknown[] };
    assert.deepEqual(sent.messages.slice(1), [
      {
        role: 'assistant',
        content: [
          {
            type: 'tool_use',
            id: call.id,
            name: 'get_weather',
            input: { location: 'Paris', unit: 'celsius' },
          },
        ],
      },
      {
        role: 'user',
        content: [{ type: 'tool_result', tool_use_id: call.id, content: '18 degrees and sunny' }],
      },
    ]);
  });

  test('reasoning_effort → extended thinking; thinking comes back as reasoning_content', async () => {
    const completion = await client.chat.completions.create({
      model: 'claude',
      reasoning_effort: 'low',
      messages: [{ role: 'user', content: 'think first' }],
    });
    const message = completion.choices[0]!.message as OpenAI.ChatCompletionMessage & Record<string, unknown>;
    assert.equal(message.content, 'Echo: think first');
    assert.equal(message['reasoning_content'], 'Let me think about that.');
    assert.deepEqual(message['thinking_blocks'], [
      { type: 'thinking', thinking: 'Let me think about that.', signature: 'sig_mock' },
    ]);
    const sent = mock.requests.at(-1)!.body as Record<string, unknown>;
    assert.deepEqual(sent['thinking'], { type: 'enabled', budget_tokens: 2048 });
    assert.equal(sent['max_tokens'], 2048 + 4096);
    assert.equal(sent['reasoning_effort'], undefined);

    const stream = await client.chat.completions.create({
      model: 'claude',
      stream: true,
      reasoning_effort: 'low',
      messages: [{ role: 'user', content: 'think first' }],
    });
    let reasoning = '';
    let text = '';
    for await (const chunk of stream) {
      const delta = chunk.choices[0]?.delta as
        | (Record<string, unknown> & { content?: string | null })
        | undefined;
      if (typeof delta?.['reasoning_content'] === 'string') reasoning += delta['reasoning_content'];
      text += delta?.content ?? '';
    }
    assert.equal(reasoning, 'Let me think about that.');
    assert.equal(text, 'Echo: think first');
  });

  test('image input reaches the upstream as a base64 image block', async () => {
    const completion = await client.chat.completions.create({
      model: 'claude',
      messages: [
        {
          role: 'user',
          content: [
            { type: 'text', text: 'what is this' },
            { type: 'image_url', image_url: { url: `data:image/png;base64,${PNG_1PX}` } },
          ],
        },
      ],
    });
    assert.equal(completion.choices[0]?.message.content, 'Echo: what is this');
    const sent = mock.requests.at(-1)?.body as { messages: Array<{ content: unknown[] }> };
    assert.deepEqual(sent.messages[0]?.content[1], {
      type: 'image',
      source: { type: 'base64', media_type: 'image/png', data: PNG_1PX },
    });
  });

  type ApiError = InstanceType<typeof OpenAI.APIError>;
  const errorCases: Array<[string, number, abstract new (...args: never[]) => ApiError]> = [
    ['status=400', 400, OpenAI.BadRequestError],
    ['status=401', 502, OpenAI.InternalServerError],
    ['status=403', 502, OpenAI.InternalServerError],
    ['status=404', 404, OpenAI.NotFoundError],
    ['status=413', 413, OpenAI.APIError],
    ['rate-limit,retry-after=3', 429, OpenAI.RateLimitError],
    ['status=500', 502, OpenAI.InternalServerError],
    ['status=529', 503, OpenAI.InternalServerError],
  ];
  for (const [directive, status, errorClass] of errorCases) {
    test(`upstream [mock:${directive}] → ${status} ${errorClass.name}`, async () => {
      for (const stream of [false, true]) {
        await assert.rejects(
          client.chat.completions.create({
            model: 'claude',
            stream,
            messages: [{ role: 'user', content: `fail [mock:${directive}]` }],
          }),
          (error: unknown) => {
            assert.ok(error instanceof errorClass, `${String(error)} is a ${errorClass.name}`);
            assert.equal((error as ApiError).status, status);
            assert.ok(!JSON.stringify((error as ApiError).error).includes(PROVIDER_KEY));
            if (status === 429) assert.equal((error as ApiError).headers?.get('retry-after'), '3');
            return true;
          },
        );
      }
    });
  }

  test('a prompt over the context window → 400 context_length_exceeded', async () => {
    mock.enqueue({
      kind: 'status',
      status: 400,
      error: { type: 'invalid_request_error', message: 'prompt is too long: 208310 tokens > 200000 maximum' },
    });
    await assert.rejects(
      client.chat.completions.create({ model: 'claude', messages: [{ role: 'user', content: 'very long' }] }),
      (error: unknown) =>
        error instanceof OpenAI.BadRequestError &&
        error.status === 400 &&
        error.code === 'context_length_exceeded',
    );
  });

  test('an error event mid-stream ends the stream with an error the SDK raises', async () => {
    const stream = await client.chat.completions.create({
      model: 'claude',
      stream: true,
      messages: [{ role: 'user', content: 'break [mock:error-in-stream=2]' }],
    });
    let text = '';
    await assert.rejects(async () => {
      for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
    }, OpenAI.APIError);
    assert.equal(text, 'Echo: break');
  });

  test('embeddings on an Anthropic model are a clear 400', async () => {
    const gwWithEmbed = client.embeddings.create({ model: 'claude', input: 'hello' });
    await assert.rejects(gwWithEmbed, (error: unknown) => {
      assert.ok(error instanceof OpenAI.BadRequestError);
      assert.match(error.message, /no embeddings/);
      return true;
    });
  });

  test('a client abort reaches the upstream', async () => {
    const gate = new Promise<void>(() => {});
    mock.enqueue({ gate, frames: 10 });
    const before = mock.requests.length;
    const controller = new AbortController();
    const stream = await client.chat.completions.create(
      { model: 'claude', stream: true, messages: [{ role: 'user', content: 'abort me' }] },
      { signal: controller.signal },
    );
    const iterator = stream[Symbol.asyncIterator]();
    let text = '';
    while (text === '') text += (await iterator.next()).value?.choices[0]?.delta.content ?? '';
    controller.abort();
    const aborted = await mock.waitForAbort({ requestId: mock.requests[before]!.id });
    assert.equal(aborted.clientAborted, true);
  });
});
