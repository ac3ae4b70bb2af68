/**
 * The official `openai` SDK → gateway → a mock Gemini server (generateContent,
 * streamGenerateContent?alt=sse, embedContent, batchEmbedContents, Google error
 * bodies) and → the mock OpenAI server on Azure OpenAI's deployment paths.
 * Proves what clients see (OpenAI shapes, SDK error classes with the right
 * status) and what the upstream receives (native wire format, keys in headers,
 * never in URLs). The presets are checked at config level, without network.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, beforeEach, describe, test } from 'node:test';
import OpenAI from 'openai';
import type { ChatCompletionChunk, ChatCompletionMessageParam } from 'openai/resources/chat/completions';
import { ConfigError, loadConfig, validateConfig } from '../../src/config/load.ts';
import { createProvider } from '../../src/providers/registry.ts';
import { registerSecret, startTestGateway, type TestGateway, tempDir } from '../helpers/gateway.ts';
import { type MockGemini, startMockGemini } from '../helpers/mock-gemini.ts';
import { type MockUpstream, startMockUpstream } from '../helpers/mock-upstream.ts';

const geminiKey = `AIzaSy-CANARY-${randomBytes(12).toString('hex')}`;
const wrongGeminiKey = `AIzaSy-CANARY-${randomBytes(12).toString('hex')}`;
const azureKey = `azure-CANARY-${randomBytes(12).toString('hex')}`;
for (const secret of [geminiKey, wrongGeminiKey, azureKey]) registerSecret(secret);

const WEATHER_TOOL = {
  type: 'function' as const,
  function: {
    name: 'get_weather',
    description: 'Current weather',
    parameters: {
      type: 'object',
      additionalProperties: false,
      properties: { location: { type: 'string' }, unit: { type: 'string', enum: ['celsius', 'fahrenheit'] } },
      required: ['location'],
    },
  },
};

let gemini: MockGemini;
let azure: MockUpstream;
let gw: TestGateway;
let client: OpenAI;

before(async () => {
  gemini = await startMockGemini({ requireApiKey: geminiKey });
  azure = await startMockUpstream({ requireApiKey: azureKey });
  gw = await startTestGateway({
    config: {
      providers: {
        gemini: { type: 'gemini', api_key: geminiKey, base_url: gemini.url },
        gemini_badkey: { type: 'gemini', api_key: wrongGeminiKey, base_url: gemini.url },
        azure: {
          type: 'azure',
          endpoint: azure.url,
          api_key: azureKey,
          deployments: { 'gpt-4o-mini': 'prod-mini' },
        },
      },
      // Faults are queued one after another on each upstream and must reach the client (or the
      // next target): no same-target retries.
      models: {
        gemini: { targets: [{ provider: 'gemini', model: 'gemini-2.5-flash' }], retries: { max: 0 } },
        'gemini-embed': {
          targets: [{ provider: 'gemini', model: 'gemini-embedding-001' }],
          retries: { max: 0 },
        },
        'gemini-badkey': { targets: [{ provider: 'gemini_badkey', model: 'gemini-2.5-flash' }] },
        'azure-gpt': { targets: [{ provider: 'azure', model: 'gpt-4o-mini' }], retries: { max: 0 } },
        'azure-embed': {
          targets: [{ provider: 'azure', model: 'text-embedding-3-small' }],
          retries: { max: 0 },
        },
        'azure-then-gemini': {
          targets: [
            { provider: 'azure', model: 'gpt-4o-mini' },
            { provider: 'gemini', model: 'gemini-2.5-flash' },
          ],
          retries: { max: 0 },
        },
      },
    },
  });
  client = new OpenAI({ baseURL: gw.baseUrl, apiKey: gw.masterKey, maxRetries: 0 });
});

after(async () => {
  await gw.close();
  await gemini.close();
  await azure.close();
});

beforeEach(() => {
  gemini.reset();
  azure.reset();
});

const user = (content: string): ChatCompletionMessageParam[] => [{ role: 'user', content }];

async function rejection(promise: Promise<unknown>): Promise<InstanceType<typeof OpenAI.APIError>> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof OpenAI.APIError) return error;
    throw error;
  }
  assert.fail('expected the request to fail');
}

describe('Gemini through the gateway', () => {
  test('text: OpenAI-shaped answer and usage; the upstream got generateContent with the key in a header', async () => {
    const completion = await client.chat.completions.create({
      model: 'gemini',
      messages: [
        { role: 'system', content: 'Be brief' },
        { role: 'user', content: 'hello gemini' },
      ],
      max_tokens: 50,
      temperature: 0.3,
    });
    assert.equal(completion.object, 'chat.completion');
    assert.equal(completion.model, 'gemini');
    assert.equal(completion.choices[0]?.message.content, 'Echo: hello gemini');
    assert.equal(completion.choices[0]?.finish_reason, 'stop');
    // (2 + 3) for the system prompt + (2 + 3) for the user turn; 3 content pieces.
    assert.deepEqual(
      [completion.usage?.prompt_tokens, completion.usage?.completion_tokens, completion.usage?.total_tokens],
      [10, 3, 13],
    );
    const [seen] = await gemini.waitForRequests(1);
    assert.equal(seen?.path, '/v1beta/models/gemini-2.5-flash:generateContent');
    assert.equal(seen?.headers['x-goog-api-key'], geminiKey);
    assert.equal(seen?.headers.authorization, undefined);
    assert.deepEqual(seen?.body, {
      contents: [{ role: 'user', parts: [{ text: 'hello gemini' }] }],
      systemInstruction: { parts: [{ text: 'Be brief' }] },
      generationConfig: { temperature: 0.3, maxOutputTokens: 50 },
    });
  });

  test('stream: the first delta reaches the client before the upstream finished; usage at the end', async () => {
    let release: () => void = () => {};
    gemini.enqueue({
      frames: 4,
      frameDelayMs: 5,
      gate: { afterFrames: 1, release: new Promise<void>((resolve) => (release = resolve)) },
    });
    const stream = await client.chat.completions.create({
      model: 'gemini',
      stream: true,
      stream_options: { include_usage: true },
      messages: user('one two three'),
    });
    const chunks: ChatCompletionChunk[] = [];
    let upstreamDoneAtFirstDelta: boolean | undefined;
    for await (const chunk of stream) {
      if (upstreamDoneAtFirstDelta === undefined && chunk.choices[0]?.delta.content) {
        upstreamDoneAtFirstDelta = gemini.requests[0]?.completedAt !== undefined;
        release();
      }
      chunks.push(chunk);
    }
    assert.equal(upstreamDoneAtFirstDelta, false);
    assert.equal(chunks.map((c) => c.choices[0]?.delta.content ?? '').join(''), 'Echo: one two three');
    assert.equal(chunks.find((c) => c.choices[0]?.finish_reason)?.choices[0]?.finish_reason, 'stop');
    const last = chunks.at(-1);
    assert.deepEqual(last?.choices, []);
    assert.deepEqual([last?.usage?.prompt_tokens, last?.usage?.completion_tokens], [6, 4]);
    assert.match(
      gemini.requests[0]?.path ?? '',
      /^\/v1beta\/models\/gemini-2\.5-flash:streamGenerateContent\?alt=sse$/,
    );
  });

  test('tool round trip: functionCall → tool_calls with a stable id → functionResponse named from it', {
    timeout: 10_000,
  }, async () => {
    const first = await client.chat.completions.create({
      model: 'gemini',
      messages: user('weather in Paris?'),
      tools: [WEATHER_TOOL],
    });
    const call = first.choices[0]?.message.tool_calls?.[0];
    assert.equal(first.choices[0]?.finish_reason, 'tool_calls');
    assert.equal(call?.id, 'call_0');
    assert.equal(call?.type === 'function' ? call.function.name : undefined, 'get_weather');
    assert.deepEqual(JSON.parse(call?.type === 'function' ? call.function.arguments : '{}'), {
      location: 'Paris',
      unit: 'celsius',
    });
    const declared = (gemini.requests[0]?.body as { tools?: unknown } | undefined)?.tools;
    assert.deepEqual(declared, [
      {
        functionDeclarations: [
          {
            name: 'get_weather',
            description: 'Current weather',
            parameters: {
              type: 'object',
              properties: {
                location: { type: 'string' },
                unit: { type: 'string', enum: ['celsius', 'fahrenheit'] },
              },
              required: ['location'],
            },
          },
        ],
      },
    ]);

    const second = await client.chat.completions.create({
      model: 'gemini',
      tools: [WEATHER_TOOL],
      messages: [
        ...user('weather in Paris?'),
        { role: 'assistant', content: null, tool_calls: first.choices[0]?.message.tool_calls ?? [] },
        { role: 'tool', tool_call_id: 'call_0', content: '21 degrees and sunny' },
      ],
    });
    assert.equal(second.choices[0]?.message.content, 'Echo: 21 degrees and sunny');
    assert.equal(second.choices[0]?.finish_reason, 'stop');
    const sent = gemini.requests[1]?.body as { contents: unknown[] };
    assert.deepEqual(sent.contents.slice(1), [
      {
        role: 'model',
        parts: [{ functionCall: { name: 'get_weather', args: { location: 'Paris', unit: 'celsius' } } }],
      },
      {
        role: 'user',
        parts: [{ functionResponse: { name: 'get_weather', response: { content: '21 degrees and sunny' } } }],
      },
    ]);
  });

  test('streamed tool call arrives as one tool_calls delta with its id and arguments', async () => {
    const stream = await client.chat.completions.create({
      model: 'gemini',
      stream: true,
      messages: user('weather?'),
      tools: [WEATHER_TOOL],
      tool_choice: { type: 'function', function: { name: 'get_weather' } },
    });
    const calls: unknown[] = [];
    let finish: string | null | undefined;
    for await (const chunk of stream) {
      calls.push(...(chunk.choices[0]?.delta.tool_calls ?? []));
      finish ??= chunk.choices[0]?.finish_reason;
    }
    assert.deepEqual(calls, [
      {
        index: 0,
        id: 'call_0',
        type: 'function',
        function: { name: 'get_weather', arguments: '{"location":"Paris","unit":"celsius"}' },
      },
    ]);
    assert.equal(finish, 'tool_calls');
    const sent = gemini.requests[0]?.body as { toolConfig: unknown };
    assert.deepEqual(sent.toolConfig, {
      functionCallingConfig: { mode: 'ANY', allowedFunctionNames: ['get_weather'] },
    });
  });

  test('image: a data URL is sent as inlineData, an https URL as fileData', async () => {
    const completion = await client.chat.completions.create({
      model: 'gemini',
      messages: [
        {
          role: 'user',
          content: [
            { type: 'text', text: 'describe these' },
            { type: 'image_url', image_url: { url: 'data:image/png;base64,iVBORw0KGgoAAAANSUhEUg==' } },
            { type: 'image_url', image_url: { url: 'https://example.com/cat.jpg' } },
          ],
        },
      ],
    });
    assert.equal(completion.choices[0]?.message.content, 'Echo: describe these');
    const sent = gemini.requests[0]?.body as { contents: Array<{ parts: unknown[] }> };
    assert.deepEqual(sent.contents[0]?.parts, [
      { text: 'describe these' },
      { inlineData: { mimeType: 'image/png', data: 'iVBORw0KGgoAAAANSUhEUg==' } },
      { fileData: { mimeType: 'image/jpeg', fileUri: 'https://example.com/cat.jpg' } },
    ]);
  });

  test('embeddings: one input → embedContent, several → batchEmbedContents, dimensions → outputDimensionality', async () => {
    const single = await client.embeddings.create({
      model: 'gemini-embed',
      input: 'hello world',
      dimensions: 4,
      encoding_format: 'float',
    });
    assert.equal(single.data.length, 1);
    assert.equal(single.data[0]?.embedding.length, 4);
    assert.equal(single.model, 'gemini-embed');
    // Gemini reports no token usage for embeddings: an estimate (~4 characters per token).
    assert.equal(single.usage.prompt_tokens, 3);
    const batch = await client.embeddings.create({
      model: 'gemini-embed',
      input: ['hello world', 'second text'],
      dimensions: 4,
      encoding_format: 'float',
    });
    assert.equal(batch.data.length, 2);
    assert.deepEqual(
      batch.data.map((d) => d.index),
      [0, 1],
    );
    assert.deepEqual(batch.data[0]?.embedding, single.data[0]?.embedding);
    const [one, many] = gemini.requests;
    assert.equal(one?.path, '/v1beta/models/gemini-embedding-001:embedContent');
    assert.deepEqual(one?.body, { content: { parts: [{ text: 'hello world' }] }, outputDimensionality: 4 });
    assert.equal(many?.path, '/v1beta/models/gemini-embedding-001:batchEmbedContents');
    assert.equal((many?.body as { requests?: unknown[] } | undefined)?.requests?.length, 2);
  });

  test('429 RESOURCE_EXHAUSTED → RateLimitError (429)', async () => {
    const error = await rejection(
      client.chat.completions.create({ model: 'gemini', messages: user('hi [mock:rate-limit]') }),
    );
    assert.ok(error instanceof OpenAI.RateLimitError);
    assert.equal(error.status, 429);
  });

  test('400 token limit → BadRequestError with code context_length_exceeded', async () => {
    gemini.enqueue({
      kind: 'status',
      status: 400,
      error: {
        message: 'The input token count (1200000) exceeds the maximum number of tokens allowed (1048576).',
      },
    });
    const error = await rejection(
      client.chat.completions.create({ model: 'gemini', messages: user('long') }),
    );
    assert.ok(error instanceof OpenAI.BadRequestError);
    assert.equal(error.code, 'context_length_exceeded');
  });

  test('503 UNAVAILABLE → 503', async () => {
    const error = await rejection(
      client.chat.completions.create({ model: 'gemini', messages: user('hi [mock:status=503]') }),
    );
    assert.ok(error instanceof OpenAI.InternalServerError);
    assert.equal(error.status, 503);
  });

  test('safety: a SAFETY-stopped candidate and a blocked prompt are finish_reason content_filter', async () => {
    gemini.enqueue({ kind: 'safety' }, { kind: 'promptBlocked' });
    for (let i = 0; i < 2; i++) {
      const completion = await client.chat.completions.create({
        model: 'gemini',
        messages: user('something bad'),
      });
      assert.equal(completion.choices[0]?.finish_reason, 'content_filter');
      assert.ok(!completion.choices[0]?.message.content);
    }
    gemini.enqueue({ kind: 'safety' });
    const stream = await client.chat.completions.create({
      model: 'gemini',
      stream: true,
      messages: user('bad'),
    });
    const reasons: unknown[] = [];
    for await (const chunk of stream)
      reasons.push(...chunk.choices.map((c) => c.finish_reason).filter(Boolean));
    assert.deepEqual(reasons, ['content_filter']);
  });

  test('an error frame mid-stream ends the stream with an error the SDK raises', async () => {
    const stream = await client.chat.completions.create({
      model: 'gemini',
      stream: true,
      messages: user('one two three [mock:error-in-stream=1]'),
    });
    await assert.rejects(async () => {
      for await (const _ of stream) {
        // drain
      }
    });
  });

  test('a stream written in pieces cut every 7 bytes (inside UTF-8 characters and field names) arrives intact', async () => {
    gemini.enqueue({
      text: 'héllo 🌍 wörld, ça marche',
      frames: 6,
      splitAt: Array.from({ length: 400 }, (_, i) => 1 + i * 7),
    });
    const stream = await client.chat.completions.create({
      model: 'gemini',
      stream: true,
      messages: user('x'),
    });
    let text = '';
    for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
    assert.equal(text, 'héllo 🌍 wörld, ça marche');
  });

  test('a connection reset before the answer is a 502 the SDK raises as an APIError', async () => {
    const error = await rejection(
      client.chat.completions.create({ model: 'gemini', messages: user('hi [mock:reset]') }),
    );
    assert.equal(error.status, 502);
  });

  test('a rejected gateway key is a 502 that never quotes the key; keys never travel in URLs', async () => {
    const error = await rejection(
      client.chat.completions.create({ model: 'gemini-badkey', messages: user('hi') }),
    );
    assert.equal(error.status, 502);
    assert.ok(!JSON.stringify(error.error).includes(wrongGeminiKey));
    await client.chat.completions.create({ model: 'gemini', messages: user('hi') });
    const seen = await gemini.waitForRequests(2);
    for (const request of seen) {
      assert.ok(!request.path.includes('key='), request.path);
      assert.ok(!request.path.includes(geminiKey) && !request.path.includes(wrongGeminiKey));
    }
  });
});

describe('Azure OpenAI through the gateway', () => {
  test('chat goes to the deployment path with api-version, key as api-key header', async () => {
    const completion = await client.chat.completions.create({
      model: 'azure-gpt',
      messages: user('hello azure'),
    });
    assert.equal(completion.choices[0]?.message.content, 'Echo: hello azure');
    assert.equal(completion.model, 'azure-gpt');
    const [seen] = await azure.waitForRequests(1);
    assert.equal(seen?.path, '/openai/deployments/prod-mini/chat/completions?api-version=2024-10-21');
    assert.equal(seen?.headers['api-key'], azureKey);
    assert.equal(seen?.headers.authorization, undefined);
  });

  test('stream and usage through Azure', async () => {
    const stream = await client.chat.completions.create({
      model: 'azure-gpt',
      stream: true,
      stream_options: { include_usage: true },
      messages: user('one two'),
    });
    let text = '';
    let usage: OpenAI.CompletionUsage | null | undefined;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta.content ?? '';
      if (chunk.usage) usage = chunk.usage;
    }
    assert.equal(text, 'Echo: one two');
    assert.equal(usage?.completion_tokens, 3);
  });

  test('embeddings use the model id as deployment name when none is mapped', async () => {
    const response = await client.embeddings.create({
      model: 'azure-embed',
      input: 'hello',
      encoding_format: 'float',
    });
    assert.equal(response.data.length, 1);
    const [seen] = await azure.waitForRequests(1);
    assert.equal(seen?.path, '/openai/deployments/text-embedding-3-small/embeddings?api-version=2024-10-21');
  });

  test('a content-filter 400 is final: BadRequestError, and no fallback to the next target', async () => {
    azure.enqueue({
      kind: 'status',
      status: 400,
      error: {
        message:
          "The response was filtered due to the prompt triggering Azure OpenAI's content management policy.",
        type: 'invalid_request_error',
        param: 'prompt',
        code: 'content_filter',
      },
    });
    const error = await rejection(
      client.chat.completions.create({ model: 'azure-then-gemini', messages: user('bad') }),
    );
    assert.ok(error instanceof OpenAI.BadRequestError);
    assert.match(error.message, /filtered/);
    assert.equal(gemini.requests.length, 0);
  });

  test('a 429 from Azure falls back to the next target (Gemini)', async () => {
    azure.enqueue({ kind: 'rateLimit', retryAfterSeconds: 1 });
    const completion = await client.chat.completions.create({
      model: 'azure-then-gemini',
      messages: user('hi there'),
    });
    assert.equal(completion.choices[0]?.message.content, 'Echo: hi there');
    assert.equal(azure.requests.length, 1);
    assert.equal(gemini.requests.length, 1);
  });
});

describe('OpenAI-compatible presets (config level, no network)', () => {
  const expected: Record<string, string> = {
    ollama: 'http://127.0.0.1:11434/v1',
    vllm: 'http://127.0.0.1:8000/v1',
    groq: 'https://api.groq.com/openai/v1',
    together: 'https://api.together.xyz/v1',
    mistral: 'https://api.mistral.ai/v1',
    deepseek: 'https://api.deepseek.com/v1',
    openrouter: 'https://openrouter.ai/api/v1',
  };

  test('every preset resolves to its documented base URL and builds an openai-compatible adapter', async () => {
    const providers = Object.fromEntries(
      Object.keys(expected).map((type) => [type, { type, api_key: 'k'.repeat(12) }]),
    );
    const config = validateConfig({
      providers,
      models: { m: { targets: [{ provider: 'ollama', model: 'llama3' }] } },
    });
    for (const [type, url] of Object.entries(expected)) {
      const provider = config.providers[type];
      assert.equal(provider && 'base_url' in provider ? provider.base_url : undefined, url, type);
      const adapter = createProvider(type, provider!);
      assert.equal(adapter.type, type);
      await adapter.close();
    }
  });

  test('base_url is overridable; local presets need no key; hosted ones do', () => {
    const config = validateConfig({
      providers: {
        local: { type: 'ollama', base_url: 'http://10.0.0.5:11434/v1' },
        gpu: { type: 'vllm' },
      },
      models: { m: { targets: [{ provider: 'local', model: 'llama3' }] } },
    });
    const local = config.providers['local'];
    assert.equal(local && 'base_url' in local ? local.base_url : undefined, 'http://10.0.0.5:11434/v1');
    assert.throws(
      () =>
        validateConfig({
          providers: { g: { type: 'groq' } },
          models: { m: { targets: [{ provider: 'g', model: 'llama-3.1-8b-instant' }] } },
        }),
      (error: unknown) =>
        error instanceof ConfigError && error.problems.includes('providers.g.api_key: required'),
    );
  });

  test('azure and gemini config: defaults and clear errors', () => {
    const config = validateConfig({
      providers: {
        g: { type: 'gemini', api_key: 'k'.repeat(12) },
        a: { type: 'azure', endpoint: 'https://res.openai.azure.com', api_key: 'k'.repeat(12) },
      },
      models: { m: { targets: [{ provider: 'g', model: 'gemini-2.5-flash' }] } },
    });
    const g = config.providers['g'];
    const a = config.providers['a'];
    assert.equal(g?.type === 'gemini' ? g.base_url : undefined, 'https://generativelanguage.googleapis.com');
    assert.equal(a?.type === 'azure' ? a.api_version : undefined, '2024-10-21');
    assert.throws(
      () =>
        validateConfig({
          providers: {
            a: {
              type: 'azure',
              endpoint: 'https://res.openai.azure.com',
              api_key: 'k',
              deployments: { x: 'a/../b' },
            },
          },
          models: { m: { targets: [{ provider: 'a', model: 'x' }] } },
        }),
      (error: unknown) =>
        error instanceof ConfigError &&
        error.problems.some((p) => p.startsWith('providers.a.deployments.x:')),
    );
  });

  test('GEMINI_API_KEY in the environment adds a gemini provider to the no-config default', () => {
    const loaded = loadConfig({ env: { GEMINI_API_KEY: geminiKey }, cwd: tempDir() });
    const provider = loaded.config.providers['gemini'];
    assert.equal(provider?.type, 'gemini');
    assert.deepEqual(
      loaded.config.models['gemini-2.5-flash']?.targets.map((t) => t.provider),
      ['gemini'],
    );
    assert.ok(loaded.notes.some((n) => n.startsWith('GEMINI_API_KEY found')));
    assert.ok(!loaded.notes.join('\n').includes(geminiKey));
  });
});
