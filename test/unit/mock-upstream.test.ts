/**
 * The mock upstream is the oracle for most gateway tests, so it is itself tested against
 * the official OpenAI SDK (which must accept its answers as real OpenAI answers) and with
 * raw fetch for the faults, at the byte level where it matters.
 */

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { after, before, beforeEach, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import OpenAI from 'openai';
import type { ChatCompletionChunk } from 'openai/resources/chat/completions';
import { type MockUpstream, parseDirective, startMockUpstream } from '../helpers/mock-upstream.ts';

let mock: MockUpstream;
let client: OpenAI;

before(async () => {
  mock = await startMockUpstream();
  client = new OpenAI({ baseURL: mock.baseUrl, apiKey: 'x', maxRetries: 0 });
});
after(async () => {
  await mock.close();
});
beforeEach(() => {
  mock.reset();
});

const user = (content: string) => [{ role: 'user' as const, content }];

function post(path: string, body: unknown, init: RequestInit = {}): Promise<Response> {
  return fetch(mock.url + path, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: 'Bearer x' },
    body: JSON.stringify(body),
    ...init,
  });
}

async function collect(stream: AsyncIterable<ChatCompletionChunk>): Promise<ChatCompletionChunk[]> {
  const chunks: ChatCompletionChunk[] = [];
  for await (const c of stream) chunks.push(c);
  return chunks;
}

/** Collects chunks until the stream fails; returns both, so a test can check what came before the fault. */
async function collectUntilError(
  stream: AsyncIterable<ChatCompletionChunk>,
): Promise<{ chunks: ChatCompletionChunk[]; error: unknown }> {
  const chunks: ChatCompletionChunk[] = [];
  try {
    for await (const c of stream) chunks.push(c);
  } catch (error) {
    return { chunks, error };
  }
  return { chunks, error: undefined };
}

function contentOf(chunks: ChatCompletionChunk[]): string {
  return chunks.map((c) => c.choices[0]?.delta.content ?? '').join('');
}

const contentFrames = (chunks: ChatCompletionChunk[]) =>
  chunks.filter((c) => typeof c.choices[0]?.delta.content === 'string' && c.choices[0].delta.content !== '');

describe('chat completions (normal answers)', () => {
  test('JSON completion has the OpenAI shape, deterministic text and usage, and the request is recorded', async () => {
    const res = await client.chat.completions.create({
      model: 'gpt-4o-mini',
      messages: [
        { role: 'system', content: 'be brief' },
        { role: 'user', content: 'hello there world' },
      ],
    });
    assert.equal(res.object, 'chat.completion');
    assert.match(res.id, /^chatcmpl-/);
    assert.equal(typeof res.created, 'number');
    assert.equal(res.model, 'gpt-4o-mini');
    assert.equal(res.choices.length, 1);
    const choice = res.choices[0];
    assert.ok(choice);
    assert.equal(choice.index, 0);
    assert.equal(choice.finish_reason, 'stop');
    assert.equal(choice.message.role, 'assistant');
    assert.equal(choice.message.content, 'Echo: hello there world');
    // (2 words + 3) + (3 words + 3); one completion token per word of "Echo: hello there world".
    assert.deepEqual(
      { p: res.usage?.prompt_tokens, c: res.usage?.completion_tokens, t: res.usage?.total_tokens },
      { p: 11, c: 4, t: 15 },
    );

    const [rec] = await mock.waitForRequests(1);
    assert.ok(rec);
    assert.equal(rec.method, 'POST');
    assert.equal(rec.path, '/v1/chat/completions');
    assert.equal(rec.headers['authorization'], 'Bearer x');
    assert.equal(rec.headers['content-type'], 'application/json');
    assert.deepEqual((rec.body as { messages: unknown }).messages, [
      { role: 'system', content: 'be brief' },
      { role: 'user', content: 'hello there world' },
    ]);
    assert.equal(rec.status, 200);
    assert.equal(rec.clientAborted, false);
    assert.ok(rec.firstByteAt !== undefined && rec.completedAt !== undefined);
  });

  test('stream with include_usage: role chunk, one chunk per word, stop, usage chunk with choices [], [DONE]', async () => {
    const messages = user('one two three four');
    const stream = await client.chat.completions.create({
      model: 'gpt-4o-mini',
      messages,
      stream: true,
      stream_options: { include_usage: true },
    });
    const chunks = await collect(stream);
    const first = chunks[0];
    assert.ok(first);
    assert.equal(first.object, 'chat.completion.chunk');
    assert.equal(first.choices[0]?.delta.role, 'assistant');
    assert.ok(chunks.every((c) => c.id === first.id && c.created === first.created));

    const frames = contentFrames(chunks);
    assert.equal(frames.length, 5);
    assert.equal(contentOf(chunks), 'Echo: one two three four');

    const usageChunk = chunks.at(-1);
    assert.ok(usageChunk);
    assert.deepEqual(usageChunk.choices, []);
    assert.equal(usageChunk.usage?.completion_tokens, frames.length);
    assert.equal(usageChunk.usage?.prompt_tokens, 4 + 3);
    assert.equal(usageChunk.usage?.total_tokens, 7 + 5);
    const finish = chunks.at(-2);
    assert.equal(finish?.choices[0]?.finish_reason, 'stop');
    assert.deepEqual(finish?.choices[0]?.delta, {});
    // Every other chunk carries `usage: null` when include_usage is on.
    assert.ok(chunks.slice(0, -1).every((c) => c.usage === null));

    const plain = await client.chat.completions.create({ model: 'gpt-4o-mini', messages });
    assert.deepEqual(plain.usage, usageChunk.usage);
    assert.equal(plain.choices[0]?.message.content, contentOf(chunks));
  });

  test('stream without include_usage: no usage field and no usage chunk; body ends with data: [DONE]', async () => {
    const res = await post('/v1/chat/completions', { model: 'm', stream: true, messages: user('hi') });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/);
    const text = await res.text();
    assert.ok(text.endsWith('data: [DONE]\n\n'));
    const events = text.split('\n\n').filter(Boolean);
    assert.equal(events.length, 5); // role, "Echo:", " hi", stop, [DONE]
    for (const ev of events.slice(0, -1)) {
      assert.ok(ev.startsWith('data: '));
      const chunk = JSON.parse(ev.slice(6)) as Record<string, unknown>;
      assert.equal('usage' in chunk, false);
      assert.equal((chunk['choices'] as unknown[]).length, 1);
    }
  });

  test('paths work under any prefix', async () => {
    const prefixed = new OpenAI({ baseURL: `${mock.url}/openai/v1`, apiKey: 'x', maxRetries: 0 });
    const res = await prefixed.chat.completions.create({ model: 'm', messages: user('prefixed') });
    assert.equal(res.choices[0]?.message.content, 'Echo: prefixed');
    assert.equal(mock.requests[0]?.path, '/openai/v1/chat/completions');
  });

  test('text override with emoji and CJK survives streaming and JSON unchanged', async () => {
    const text = 'Héllo 👋🏽 世界 🌍 done';
    mock.enqueue({ text }, { text });
    const chunks = await collect(
      await client.chat.completions.create({ model: 'm', messages: user('x'), stream: true }),
    );
    assert.equal(contentOf(chunks), text);
    assert.equal(contentFrames(chunks).length, 5);
    const plain = await client.chat.completions.create({ model: 'm', messages: user('x') });
    assert.equal(plain.choices[0]?.message.content, text);
    assert.equal(plain.usage?.completion_tokens, 5);
  });

  test('frames and frameDelayMs: exactly N content frames, usage counts them', async () => {
    mock.enqueue({ frames: 7, frameDelayMs: 1 });
    const chunks = await collect(
      await client.chat.completions.create({
        model: 'm',
        messages: user('short'),
        stream: true,
        stream_options: { include_usage: true },
      }),
    );
    assert.equal(contentFrames(chunks).length, 7);
    assert.equal(chunks.at(-1)?.usage?.completion_tokens, 7);
    assert.equal(contentOf(chunks), 'Echo: short lorem ipsum dolor sit amet');
  });

  test('max_tokens cuts the answer and finishes with length', async () => {
    const res = await client.chat.completions.create({
      model: 'm',
      messages: user('a b c d e'),
      max_tokens: 2,
    });
    assert.equal(res.choices[0]?.message.content, 'Echo: a');
    assert.equal(res.choices[0]?.finish_reason, 'length');
    assert.equal(res.usage?.completion_tokens, 2);
  });

  test('tool calls: streamed in several argument deltas that reassemble to valid JSON; tool result gets text', async () => {
    const tools = [
      {
        type: 'function' as const,
        function: { name: 'get_weather', parameters: { type: 'object', properties: {} } },
      },
      { type: 'function' as const, function: { name: 'other' } },
    ];
    const chunks = await collect(
      await client.chat.completions.create({ model: 'm', messages: user('weather?'), tools, stream: true }),
    );
    const deltas = chunks.flatMap((c) => c.choices[0]?.delta.tool_calls ?? []);
    assert.ok(deltas.length >= 3, `expected the call split over several chunks, got ${deltas.length}`);
    assert.equal(deltas[0]?.function?.name, 'get_weather');
    assert.match(deltas[0]?.id ?? '', /^call_/);
    const args = deltas.map((d) => d.function?.arguments ?? '').join('');
    assert.deepEqual(JSON.parse(args), { location: 'Paris', unit: 'celsius' });
    assert.equal(chunks.at(-1)?.choices[0]?.finish_reason, 'tool_calls');

    const plain = await client.chat.completions.create({ model: 'm', messages: user('weather?'), tools });
    const call = plain.choices[0]?.message.tool_calls?.[0];
    assert.ok(call && call.type === 'function');
    assert.equal(plain.choices[0]?.message.content, null);
    assert.equal(plain.choices[0]?.finish_reason, 'tool_calls');
    assert.equal(call.function.arguments, args);

    const followUp = await client.chat.completions.create({
      model: 'm',
      tools,
      messages: [
        ...user('weather?'),
        { role: 'assistant', content: null, tool_calls: [call] },
        { role: 'tool', tool_call_id: call.id, content: '18 degrees' },
      ],
    });
    assert.equal(followUp.choices[0]?.message.content, 'Echo: 18 degrees');
    assert.equal(followUp.choices[0]?.finish_reason, 'stop');

    const none = await client.chat.completions.create({
      model: 'm',
      tools,
      tool_choice: 'none',
      messages: user('no tools'),
    });
    assert.equal(none.choices[0]?.message.content, 'Echo: no tools');
  });
});

describe('embeddings and models', () => {
  test('embeddings: one deterministic unit vector per input, same through base64 and float, usage', async () => {
    const viaBase64 = await client.embeddings.create({
      model: 'text-embedding-3-small',
      input: ['a b', 'c'],
    });
    const viaFloat = await client.embeddings.create({
      model: 'text-embedding-3-small',
      input: ['a b', 'c'],
      encoding_format: 'float',
    });
    // The SDK asks for base64 unless told otherwise; both encodings must decode to the same vector.
    assert.equal(
      (mock.requests[0]?.body as { encoding_format?: unknown } | undefined)?.encoding_format,
      'base64',
    );
    assert.equal(viaFloat.object, 'list');
    assert.equal(viaFloat.data.length, 2);
    assert.deepEqual(
      viaFloat.data.map((d) => [d.object, d.index, d.embedding.length]),
      [
        ['embedding', 0, 8],
        ['embedding', 1, 8],
      ],
    );
    assert.deepEqual(Array.from(viaBase64.data[0]?.embedding ?? []), viaFloat.data[0]?.embedding);
    const norm = Math.hypot(...(viaFloat.data[0]?.embedding ?? []));
    assert.ok(Math.abs(norm - 1) < 1e-6);
    assert.notDeepEqual(viaFloat.data[0]?.embedding, viaFloat.data[1]?.embedding);
    assert.deepEqual(viaFloat.usage, { prompt_tokens: 3, total_tokens: 3 });
    const again = await client.embeddings.create({ model: 'e', input: 'c', encoding_format: 'float' });
    assert.deepEqual(again.data[0]?.embedding, viaFloat.data[1]?.embedding);
  });

  test('a directive in an embeddings string input applies to that request', async () => {
    await assert.rejects(
      client.embeddings.create({ model: 'e', input: 'x [mock:status=503]' }),
      (e: unknown) => e instanceof OpenAI.InternalServerError && e.status === 503,
    );
  });

  test('models list and model retrieve', async () => {
    const ids: string[] = [];
    for await (const m of client.models.list()) ids.push(m.id);
    assert.deepEqual(ids, ['gpt-4o-mini', 'gpt-4o', 'text-embedding-3-small']);
    const one = await client.models.retrieve('gpt-4o');
    assert.deepEqual(one.object, 'model');
    await assert.rejects(client.models.retrieve('nope'), OpenAI.NotFoundError);
  });
});

describe('errors', () => {
  test('429 from a directive is a RateLimitError with retry-after visible; the directive is not echoed', async () => {
    const err = await client.chat.completions
      .create({ model: 'm', messages: user('hi [mock:status=429,retry-after=2,x-request-id=abc]') })
      .then(
        () => assert.fail('expected a 429'),
        (e: unknown) => e,
      );
    assert.ok(err instanceof OpenAI.RateLimitError);
    assert.equal(err.status, 429);
    assert.equal(err.headers?.get('retry-after'), '2');
    assert.equal(err.headers?.get('x-request-id'), 'abc');
    assert.equal(err.code, 'rate_limit_exceeded');

    const ok = await client.chat.completions.create({ model: 'm', messages: user('hi [mock:frames=2]') });
    assert.equal(ok.choices[0]?.message.content, 'Echo: hi');
  });

  test('rateLimit behaviour: HTTP-date retry-after and retry-after-ms', async () => {
    const date = new Date(Date.UTC(2030, 0, 1));
    mock.enqueue({ kind: 'rateLimit', retryAfterDate: date, retryAfterMs: 1500 });
    const res = await post('/v1/chat/completions', { model: 'm', messages: user('x') });
    assert.equal(res.status, 429);
    assert.equal(res.headers.get('retry-after'), 'Tue, 01 Jan 2030 00:00:00 GMT');
    assert.equal(res.headers.get('retry-after-ms'), '1500');
    const body = (await res.json()) as { error: Record<string, unknown> };
    assert.deepEqual(Object.keys(body.error).sort(), ['code', 'message', 'param', 'type']);
  });

  test('status faults map to the SDK error classes with OpenAI-shaped bodies', async () => {
    const cases = [
      [400, OpenAI.BadRequestError],
      [401, OpenAI.AuthenticationError],
      [404, OpenAI.NotFoundError],
      [500, OpenAI.InternalServerError],
      [503, OpenAI.InternalServerError],
    ] as const;
    for (const [status] of cases) mock.enqueue({ kind: 'status', status });
    for (const [status, cls] of cases) {
      const err = await client.chat.completions.create({ model: 'm', messages: user('x') }).then(
        () => assert.fail(`expected ${status}`),
        (e: unknown) => e,
      );
      assert.ok(err instanceof cls, `status ${status}`);
      assert.equal(err.status, status);
      assert.equal(typeof err.error, 'object');
      assert.deepEqual(Object.keys(err.error as object).sort(), ['code', 'message', 'param', 'type']);
    }
    mock.enqueue({ kind: 'status', status: 400, error: { param: 'messages', code: 'bad' } });
    const res = await post('/v1/chat/completions', { model: 'm', messages: user('x') });
    assert.equal(res.status, 400);
    const body = (await res.json()) as { error: { param: unknown; code: unknown; type: unknown } };
    assert.deepEqual(
      [body.error.param, body.error.code, body.error.type],
      ['messages', 'bad', 'invalid_request_error'],
    );
  });

  test('requireApiKey answers 401 unless the bearer key matches', async () => {
    const guarded = await startMockUpstream({ requireApiKey: 'sk-good' });
    try {
      const bad = new OpenAI({ baseURL: guarded.baseUrl, apiKey: 'sk-bad', maxRetries: 0 });
      await assert.rejects(
        bad.chat.completions.create({ model: 'm', messages: user('x') }),
        (e: unknown) => e instanceof OpenAI.AuthenticationError && e.code === 'invalid_api_key',
      );
      const good = new OpenAI({ baseURL: guarded.baseUrl, apiKey: 'sk-good', maxRetries: 0 });
      const ok = await good.chat.completions.create({ model: 'm', messages: user('x') });
      assert.equal(ok.choices[0]?.message.content, 'Echo: x');
      assert.deepEqual(
        guarded.requests.map((r) => r.behaviour),
        ['auth', 'ok'],
      );
    } finally {
      await guarded.close();
    }
  });

  test('invalid JSON, missing messages, unknown path and unknown directive keys get 400/404 OpenAI errors', async () => {
    const badJson = await fetch(`${mock.baseUrl}/chat/completions`, { method: 'POST', body: '{"model":' });
    assert.equal(badJson.status, 400);
    assert.equal(((await badJson.json()) as { error: { type: string } }).error.type, 'invalid_request_error');
    const noMessages = await post('/v1/chat/completions', { model: 'm' });
    assert.equal(noMessages.status, 400);
    assert.equal(((await noMessages.json()) as { error: { param: string } }).error.param, 'messages');
    const unknown = await post('/v1/nope', {});
    assert.equal(unknown.status, 404);
    assert.match(((await unknown.json()) as { error: { message: string } }).error.message, /Invalid URL/);
    const typo = await post('/v1/chat/completions', { model: 'm', messages: user('[mock:stauts=500]') });
    assert.equal(typo.status, 400);
    assert.match(
      ((await typo.json()) as { error: { message: string } }).error.message,
      /unknown key "stauts"/,
    );
    // Unparseable bodies are recorded as raw text, parsed ones as JSON.
    assert.equal(mock.requests[0]?.body, '{"model":');
    assert.deepEqual(mock.requests[1]?.body, { model: 'm' });
    assert.deepEqual(
      mock.requests.map((r) => r.behaviour),
      ['invalid', 'invalid', 'invalid', 'invalid'],
    );
  });
});

describe('connection faults', () => {
  test('reset surfaces as a connection error', async () => {
    mock.enqueue({ kind: 'reset' });
    await assert.rejects(
      client.chat.completions.create({ model: 'm', messages: user('x') }),
      OpenAI.APIConnectionError,
    );
    const [rec] = await mock.waitForRequests(1);
    assert.equal(rec?.behaviour, 'reset');
    assert.equal(rec?.clientAborted, false);
    assert.equal(rec?.status, undefined);
  });

  test('resetMidStream: the frames before the cut arrive, then the stream fails', async () => {
    mock.enqueue({ kind: 'resetMidStream', afterFrames: 2 });
    const stream = await client.chat.completions.create({
      model: 'm',
      messages: user('a b c d e f'),
      stream: true,
    });
    const { chunks, error } = await collectUntilError(stream);
    assert.ok(error instanceof Error, 'the stream must fail');
    assert.equal(chunks.length, 3);
    assert.equal(contentOf(chunks), 'Echo: a');
    assert.equal(mock.requests[0]?.clientAborted, false);
  });

  test('resetMidStream on a non-streaming request truncates the JSON body', async () => {
    mock.enqueue({ kind: 'resetMidStream', afterFrames: 0 });
    await assert.rejects(client.chat.completions.create({ model: 'm', messages: user('x') }));
  });

  test('hang + client abort: clientAborted via waitForAbort', async () => {
    mock.enqueue({ kind: 'hang' });
    const ac = new AbortController();
    const pending = client.chat.completions.create(
      { model: 'm', messages: user('x') },
      { signal: ac.signal },
    );
    const [rec] = await mock.waitForRequests(1);
    assert.equal(rec?.clientAborted, false);
    ac.abort();
    await assert.rejects(pending, OpenAI.APIUserAbortError);
    const aborted = await mock.waitForAbort({ requestId: rec?.id });
    assert.equal(aborted, rec);
    assert.equal(aborted.clientAborted, true);
    assert.equal(typeof aborted.abortedAt, 'number');
    assert.equal(aborted.status, undefined);
  });

  test('hangAfterHeaders: 200 SSE headers arrive, then nothing; aborting the read is recorded', async () => {
    mock.enqueue({ kind: 'hangAfterHeaders' });
    const ac = new AbortController();
    const res = await post(
      '/v1/chat/completions',
      { model: 'm', stream: true, messages: user('x') },
      { signal: ac.signal },
    );
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/);
    const reading = res.text();
    ac.abort();
    await assert.rejects(reading);
    const aborted = await mock.waitForAbort();
    assert.equal(aborted.behaviour, 'hangAfterHeaders');
    assert.equal(aborted.status, 200);
  });

  test('slowFirstByte: nothing is sent before the delay (a client giving up first sees no status)', async () => {
    mock.enqueue({ kind: 'slowFirstByte', ms: 60_000 });
    const ac = new AbortController();
    const pending = post('/v1/chat/completions', { model: 'm', messages: user('x') }, { signal: ac.signal });
    await mock.waitForRequests(1);
    ac.abort();
    await assert.rejects(pending);
    const aborted = await mock.waitForAbort();
    assert.equal(aborted.firstByteAt, undefined);
  });

  test('slowFirstByte via directive still answers normally', async () => {
    const res = await client.chat.completions.create({
      model: 'm',
      messages: user('x [mock:slow-first-byte=5]'),
    });
    assert.equal(res.choices[0]?.message.content, 'Echo: x');
  });

  test('delayMs: headers first, body later (a client can give up between the two)', async () => {
    mock.enqueue({ delayMs: 60_000 });
    const ac = new AbortController();
    const res = await post(
      '/v1/chat/completions',
      { model: 'm', messages: user('x') },
      { signal: ac.signal },
    );
    assert.equal(res.status, 200);
    const reading = res.text();
    ac.abort();
    await assert.rejects(reading);
    const aborted = await mock.waitForAbort();
    assert.equal(aborted.status, 200);
    assert.equal(aborted.completedAt, undefined);
  });

  test('redirect returns 307 with a Location (not followed with redirect: manual)', async () => {
    mock.enqueue({ kind: 'redirect' });
    const res = await post(
      '/v1/chat/completions',
      { model: 'm', messages: user('x') },
      { redirect: 'manual' },
    );
    assert.equal(res.status, 307);
    assert.equal(res.headers.get('location'), `${mock.url}/redirected/v1/chat/completions`);
    await res.arrayBuffer();
    const viaDirective = await post(
      '/v1/chat/completions',
      { model: 'm', messages: user('[mock:redirect=http://127.0.0.1:1/elsewhere]') },
      { redirect: 'manual' },
    );
    assert.equal(viaDirective.status, 307);
    assert.equal(viaDirective.headers.get('location'), 'http://127.0.0.1:1/elsewhere');
    await viaDirective.arrayBuffer();
    assert.equal(mock.requests.length, 2);
  });

  test('client leaving a slow stream early is recorded as an abort, and the stream stops', async () => {
    mock.enqueue({ frames: 1000, frameDelayMs: 20 });
    const stream = await client.chat.completions.create({ model: 'm', messages: user('x'), stream: true });
    let seen = 0;
    for await (const _chunk of stream) {
      seen++;
      if (seen === 2) break; // the SDK aborts the HTTP request on break
    }
    const aborted = await mock.waitForAbort();
    assert.equal(aborted.status, 200);
    assert.equal(aborted.completedAt, undefined);
    assert.equal(aborted.behaviour, 'ok');
  });

  test('close() destroys hung connections and stops the server', async () => {
    const own = await startMockUpstream();
    own.setDefault({ kind: 'hang' });
    const pending = fetch(`${own.baseUrl}/chat/completions`, {
      method: 'POST',
      body: JSON.stringify({ model: 'm', messages: user('x') }),
    });
    await own.waitForRequests(1);
    await own.close();
    await assert.rejects(pending);
    assert.equal(own.requests[0]?.clientAborted, false);
    await assert.rejects(fetch(`${own.baseUrl}/models`));
  });
});

describe('malformed bodies', () => {
  test('malformedSse invalidJson makes the SDK fail after the good frames', async () => {
    mock.enqueue({ kind: 'malformedSse' });
    // The SDK logs the bad frame before throwing; that noise is expected here.
    const quiet = new OpenAI({ baseURL: mock.baseUrl, apiKey: 'x', maxRetries: 0, logLevel: 'off' });
    const stream = await quiet.chat.completions.create({ model: 'm', messages: user('a b c'), stream: true });
    const { chunks, error } = await collectUntilError(stream);
    assert.ok(error instanceof SyntaxError);
    assert.equal(chunks.length, 2);
  });

  for (const variant of ['noSpace', 'comments', 'multiLineData', 'garbage'] as const) {
    test(`malformedSse ${variant} is legal SSE: the SDK reads the same content`, async () => {
      mock.enqueue({ kind: 'malformedSse', variant });
      const stream = await client.chat.completions.create({
        model: 'm',
        messages: user('a b c'),
        stream: true,
      });
      const chunks = await collect(stream);
      assert.equal(contentOf(chunks), 'Echo: a b c');
    });
  }

  test('malformedSse noDone ends the stream without [DONE]', async () => {
    mock.enqueue({ kind: 'malformedSse', variant: 'noDone' });
    const res = await post('/v1/chat/completions', { model: 'm', stream: true, messages: user('x') });
    const text = await res.text();
    assert.ok(text.includes('"finish_reason":"stop"'));
    assert.equal(text.includes('[DONE]'), false);
  });

  test('malformedJson: 200 with a truncated body the SDK cannot parse', async () => {
    mock.enqueue({ kind: 'malformedJson' }, { kind: 'malformedJson' });
    const res = await post('/v1/chat/completions', { model: 'm', messages: user('x') });
    assert.equal(res.status, 200);
    const text = await res.text();
    assert.ok(text.startsWith('{"id":'));
    assert.throws(() => JSON.parse(text), SyntaxError);
    await assert.rejects(client.chat.completions.create({ model: 'm', messages: user('x') }));
  });

  test('errorInStream: 200 SSE then an error frame the SDK raises as an APIError', async () => {
    mock.enqueue({ kind: 'errorInStream', afterFrames: 1, error: { message: 'boom mid-stream' } });
    const stream = await client.chat.completions.create({ model: 'm', messages: user('a b'), stream: true });
    const { chunks, error } = await collectUntilError(stream);
    assert.ok(error instanceof OpenAI.APIError);
    assert.match(error.message, /boom mid-stream/);
    assert.equal(chunks.length, 2);
  });
});

describe('byte-level framing', () => {
  test('splitAt inside UTF-8 sequences and inside \\r\\n gives byte-identical output', async () => {
    const shape = { text: 'Hi 👋 世界', completionId: 'chatcmpl-fixed', lineEnding: '\r\n' as const };
    const body = { model: 'm', stream: true, stream_options: { include_usage: true }, messages: user('x') };
    mock.enqueue(shape);
    const whole = Buffer.from(await (await post('/v1/chat/completions', body)).arrayBuffer());

    const emoji = whole.indexOf(Buffer.from('👋'));
    const cjk = whole.indexOf(Buffer.from('世'));
    const crlf = whole.indexOf(Buffer.from('\r\n'));
    assert.ok(emoji > 0 && cjk > 0 && crlf > 0);
    const splitAt = [crlf + 1, emoji + 1, emoji + 2, emoji + 3, cjk + 1, cjk + 2, whole.length - 3];
    mock.enqueue({ ...shape, splitAt });
    const split = Buffer.from(await (await post('/v1/chat/completions', body)).arrayBuffer());
    assert.ok(split.equals(whole));
    assert.ok(whole.toString('utf8').endsWith('data: [DONE]\r\n\r\n'));

    mock.enqueue({ ...shape, splitAt });
    const viaSdk = await collect(
      await client.chat.completions.create({ model: 'm', messages: user('x'), stream: true }),
    );
    assert.equal(contentOf(viaSdk), shape.text);
  });

  test('splitAt on a JSON answer gives byte-identical output', async () => {
    const shape = { completionId: 'chatcmpl-fixed' };
    mock.enqueue(shape, { ...shape, splitAt: [1, 10, 11, 50] });
    const a = await (await post('/v1/chat/completions', { model: 'm', messages: user('x') })).text();
    const b = await (await post('/v1/chat/completions', { model: 'm', messages: user('x') })).text();
    assert.equal(b, a);
  });

  test('lineEnding \\r alone is legal SSE and parsed by the SDK', async () => {
    mock.enqueue({ lineEnding: '\r' }, { lineEnding: '\r' });
    const raw = await (
      await post('/v1/chat/completions', { model: 'm', stream: true, messages: user('x y') })
    ).text();
    assert.equal(raw.includes('\n'), false);
    assert.ok(raw.endsWith('data: [DONE]\r\r'));
    const chunks = await collect(
      await client.chat.completions.create({ model: 'm', messages: user('x y'), stream: true }),
    );
    assert.equal(contentOf(chunks), 'Echo: x y');
  });
});

describe('control API', () => {
  test('CLI prints {"port":N}, serves, and exits 0 on SIGTERM', async () => {
    const cli = fileURLToPath(new URL('../helpers/mock-upstream-cli.ts', import.meta.url));
    const child = spawn(process.execPath, [cli, '--port', '0', '--frames', '3'], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const exited = once(child, 'exit');
    try {
      const [line] = (await once(createInterface({ input: child.stdout }), 'line')) as [string];
      const { port } = JSON.parse(line) as { port: number };
      const cliClient = new OpenAI({ baseURL: `http://127.0.0.1:${port}/v1`, apiKey: 'x', maxRetries: 0 });
      const res = await cliClient.chat.completions.create({ model: 'm', messages: user('a') });
      assert.equal(res.usage?.completion_tokens, 3);
    } finally {
      child.kill('SIGTERM');
    }
    assert.deepEqual(await exited, [0, null]);
  });

  test('queue is FIFO, path-filtered entries wait for their path, default applies after, reset clears', async () => {
    mock.setDefault({ text: 'default' });
    mock.enqueue({ text: 'first', path: '/embeddings' }, { text: 'second' });
    const a = await client.chat.completions.create({ model: 'm', messages: user('x') });
    assert.equal(a.choices[0]?.message.content, 'second');
    const b = await client.chat.completions.create({ model: 'm', messages: user('x') });
    assert.equal(b.choices[0]?.message.content, 'default');
    await client.embeddings.create({ model: 'e', input: 'x' }); // consumes the path-filtered entry
    const c = await client.chat.completions.create({ model: 'm', messages: user('x') });
    assert.equal(c.choices[0]?.message.content, 'default');
    mock.reset();
    assert.equal(mock.requests.length, 0);
    const d = await client.chat.completions.create({ model: 'm', messages: user('x') });
    assert.equal(d.choices[0]?.message.content, 'Echo: x');
    // Ids keep counting across reset(), so a stale reference never aliases a new request.
    assert.ok((mock.requests[0]?.id ?? 0) > 4);
  });

  test('waitForRequests and waitForAbort reject with a clear error at the timeout', async () => {
    await assert.rejects(mock.waitForRequests(1, 20), /expected 1 request\(s\), got 0: no requests recorded/);
    await client.chat.completions.create({ model: 'm', messages: user('x') });
    await assert.rejects(
      mock.waitForAbort(20),
      /no client abort; recorded: #\d+ POST \/v1\/chat\/completions/,
    );
  });

  test('parseDirective covers the documented keys', () => {
    assert.deepEqual(parseDirective('status=503,retry-after-ms=250'), {
      kind: 'status',
      status: 503,
      headers: { 'retry-after-ms': '250' },
    });
    assert.deepEqual(parseDirective('rate-limit,retry-after=3'), { kind: 'rateLimit', retryAfterSeconds: 3 });
    assert.deepEqual(parseDirective('resetMidStream=2,rst'), {
      kind: 'resetMidStream',
      afterFrames: 2,
      rst: true,
    });
    assert.deepEqual(parseDirective('malformed-sse=no-space,line-ending=crlf,split-at=3|9'), {
      kind: 'malformedSse',
      variant: 'noSpace',
      lineEnding: '\r\n',
      splitAt: [3, 9],
    });
    assert.deepEqual(parseDirective('frames=3,frame-delay-ms=2,text=日本 🎌,delay-ms=4,id=c1'), {
      frames: 3,
      frameDelayMs: 2,
      text: '日本 🎌',
      delayMs: 4,
      completionId: 'c1',
    });
    assert.deepEqual(parseDirective('hang'), { kind: 'hang' });
    assert.deepEqual(parseDirective('error-in-stream=0'), { kind: 'errorInStream', afterFrames: 0 });
    assert.throws(() => parseDirective('status=500,hang'), /two kinds/);
  });
});
