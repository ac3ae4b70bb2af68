/**
 * The official `@anthropic-ai/sdk` against the gateway, whose models target
 * the mock OpenAI upstream: an Anthropic application keeps working, answers
 * and streams translated both ways, errors arrive as the SDK's own classes
 * with Anthropic's statuses, and every request is billed on the ledger.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, beforeEach, describe, test } from 'node:test';
import Anthropic from '@anthropic-ai/sdk';
import { estimatePromptTokens } from '../../src/core/token-estimate.ts';
import type { ChatMessage } from '../../src/core/types.ts';
import type { LedgerRow } from '../../src/ledger/usage-ledger.ts';
import { registerSecret, startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { type MockUpstream, type RecordedRequest, startMockUpstream } from '../helpers/mock-upstream.ts';

type APIError = InstanceType<typeof Anthropic.APIError>;

const canary = `sk-CANARY-${randomBytes(12).toString('hex')}`;
registerSecret(canary);

const PNG =
  'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==';

let upstream: MockUpstream;
let gw: TestGateway;
let client: Anthropic;
const rows = new Map<string, LedgerRow>();
const rowWaiters = new Map<string, Array<(row: LedgerRow) => void>>();

const user = (content: string): Anthropic.MessageParam[] => [{ role: 'user', content }];
const newRequestId = (label: string) => `${label}-${randomBytes(6).toString('hex')}`;

function sdk(options: { apiKey?: string | null; authToken?: string | null } = {}): Anthropic {
  return new Anthropic({
    baseURL: gw.url,
    apiKey: options.apiKey === undefined ? gw.masterKey : options.apiKey,
    authToken: options.authToken ?? null,
    maxRetries: 0,
  });
}

/** Resolves once the gateway handed the ledger a row for the request (rows come after the response). */
function ledgerRow(requestId: string): Promise<LedgerRow> {
  const row = rows.get(requestId);
  if (row) return Promise.resolve(row);
  return new Promise((resolve) => {
    rowWaiters.set(requestId, [...(rowWaiters.get(requestId) ?? []), resolve]);
  });
}

function chatBody(request: RecordedRequest | undefined): { messages: ChatMessage[]; [key: string]: unknown } {
  return request?.body as { messages: ChatMessage[] };
}

async function createKey(body: Record<string, unknown>): Promise<string> {
  const res = await fetch(`${gw.url}/admin/keys`, {
    method: 'POST',
    headers: { authorization: `Bearer ${gw.masterKey}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const created = (await res.json()) as { key: string };
  registerSecret(created.key);
  assert.equal(res.status, 201);
  return created.key;
}

/** Runs `fn`, expecting the SDK error class `cls` with `status`; returns the error. */
async function rejectsWith<T extends APIError>(
  fn: () => Promise<unknown>,
  cls: abstract new (...args: never[]) => T,
  status: number,
): Promise<T> {
  try {
    await fn();
  } catch (error) {
    assert.ok(
      error instanceof cls,
      `expected ${cls.name}, got ${(error as Error)?.constructor?.name}: ${String(error)}`,
    );
    assert.equal(error.status, status);
    return error;
  }
  assert.fail(`expected ${cls.name} (${status}), but the call succeeded`);
}

/** The SDK parsed an Anthropic-shaped error body (`{"type":"error","error":{type,message}}`) of `type`. */
function assertAnthropicError(error: APIError, type: string): void {
  const body = errorBody(error);
  assert.equal(body.type, 'error');
  assert.equal(body.error.type, type);
  assert.equal(typeof body.error.message, 'string');
  assert.ok(error.requestID, 'request-id header on errors');
}

/** The Anthropic error body the SDK parsed. */
function errorBody(error: APIError): { type: string; error: { type: string; message: string } } {
  return error.error as { type: string; error: { type: string; message: string } };
}

before(async () => {
  upstream = await startMockUpstream({ requireApiKey: canary });
  gw = await startTestGateway({
    config: {
      server: { body_limit_bytes: 16_384, heartbeat_ms: 50 },
      providers: { up: { type: 'openai', base_url: upstream.baseUrl, api_key: canary } },
      models: {
        gpt: {
          // One fault after another on one target, each meant to reach the client: no breaker
          // (it would rightly open and answer 503) and no same-target retries.
          circuit_breaker: { enabled: false },
          retries: { max: 0 },
          targets: [{ provider: 'up', model: 'gpt-4o-mini' }],
          timeouts: { first_byte_ms: 500, total_ms: 10_000, idle_ms: 2_000 },
        },
        other: { targets: [{ provider: 'up', model: 'gpt-4o' }] },
      },
    },
  });
  const ledger = gw.gateway.context.ledger;
  const record = ledger.record.bind(ledger);
  ledger.record = (row: LedgerRow): void => {
    record(row);
    const id = row.clientRequestId ?? row.requestId;
    rows.set(id, row);
    for (const resolve of rowWaiters.get(id) ?? []) resolve(row);
    rowWaiters.delete(id);
  };
  client = sdk();
});

after(async () => {
  await gw?.close();
  await upstream?.close();
});

beforeEach(() => {
  upstream.reset();
});

describe('messages.create', () => {
  test('a text answer in Anthropic shape, with usage, request-id and a ledger row', async () => {
    const requestId = newRequestId('text');
    const { data: message, response } = await client.messages
      .create(
        { model: 'gpt', max_tokens: 256, system: 'Be brief.', messages: user('hello world') },
        { headers: { 'x-request-id': requestId } },
      )
      .withResponse();
    assert.match(message.id, /^msg_/);
    assert.equal(message.type, 'message');
    assert.equal(message.role, 'assistant');
    assert.equal(message.model, 'gpt');
    assert.deepEqual(message.content, [{ type: 'text', text: 'Echo: hello world' }]);
    assert.equal(message.stop_reason, 'end_turn');
    assert.equal(message.stop_sequence, null);
    // The mock's counts: prompt = Σ(words + 3) over system and user; completion = frames (3 words).
    assert.equal(message.usage.input_tokens, 2 + 3 + 2 + 3);
    assert.equal(message.usage.output_tokens, 3);
    assert.equal(response.headers.get('request-id'), requestId);

    const [seen] = await upstream.waitForRequests(1);
    const body = chatBody(seen);
    assert.equal(body['model'], 'gpt-4o-mini');
    assert.equal(body['max_tokens'], 256);
    assert.deepEqual(body.messages, [
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'hello world' },
    ]);

    const row = await ledgerRow(requestId);
    assert.equal(row.route, '/v1/messages');
    assert.equal(row.status, 'ok');
    assert.equal(row.modelRequested, 'gpt');
    assert.equal(row.promptTokens, 10);
    assert.equal(row.completionTokens, 3);
    assert.equal(row.usageSource, 'upstream');
  });

  test('max_tokens reached → stop_reason max_tokens; stop_sequences reach the upstream as stop', async () => {
    const message = await client.messages.create({
      model: 'gpt',
      max_tokens: 2,
      stop_sequences: ['END'],
      messages: user('one two three four five'),
    });
    assert.equal(message.stop_reason, 'max_tokens');
    assert.equal(message.usage.output_tokens, 2);
    const [seen] = await upstream.waitForRequests(1);
    assert.deepEqual(chatBody(seen)['stop'], ['END']);
  });

  test('Authorization: Bearer works as well as x-api-key', async () => {
    const bearer = sdk({ apiKey: null, authToken: gw.masterKey });
    const message = await bearer.messages.create({ model: 'gpt', max_tokens: 64, messages: user('bearer') });
    assert.deepEqual(message.content, [{ type: 'text', text: 'Echo: bearer' }]);
  });

  test('an image (base64 and url) reaches the upstream as image_url parts', async () => {
    const message = await client.messages.create({
      model: 'gpt',
      max_tokens: 64,
      messages: [
        {
          role: 'user',
          content: [
            { type: 'image', source: { type: 'base64', media_type: 'image/png', data: PNG } },
            { type: 'image', source: { type: 'url', url: 'https://images.example.com/cat.jpg' } },
            { type: 'text', text: 'describe it' },
          ],
        },
      ],
    });
    assert.deepEqual(message.content, [{ type: 'text', text: 'Echo: describe it' }]);
    const [seen] = await upstream.waitForRequests(1);
    assert.deepEqual(chatBody(seen).messages[0]?.content, [
      { type: 'image_url', image_url: { url: `data:image/png;base64,${PNG}` } },
      { type: 'image_url', image_url: { url: 'https://images.example.com/cat.jpg' } },
      { type: 'text', text: 'describe it' },
    ]);
  });
});

describe('tool use', () => {
  const tools: Anthropic.Tool[] = [
    {
      name: 'get_weather',
      description: 'Current weather for a city',
      input_schema: {
        type: 'object',
        properties: { location: { type: 'string' }, unit: { type: 'string' } },
        required: ['location'],
      },
    },
  ];

  test('tool_use → tool_result → text, round trip through the canonical shape', async () => {
    const question = user('What is the weather in Paris?');
    const first = await client.messages.create({
      model: 'gpt',
      max_tokens: 256,
      tools,
      tool_choice: { type: 'tool', name: 'get_weather' },
      messages: question,
    });
    assert.equal(first.stop_reason, 'tool_use');
    assert.equal(first.content.length, 1);
    const call = first.content[0];
    assert.ok(call?.type === 'tool_use');
    assert.equal(call.name, 'get_weather');
    assert.deepEqual(call.input, { location: 'Paris', unit: 'celsius' });
    const [firstSeen] = await upstream.waitForRequests(1);
    const firstBody = chatBody(firstSeen);
    assert.deepEqual(firstBody['tools'], [
      {
        type: 'function',
        function: {
          name: 'get_weather',
          description: 'Current weather for a city',
          parameters: tools[0]!.input_schema,
        },
      },
    ]);
    assert.deepEqual(firstBody['tool_choice'], { type: 'function', function: { name: 'get_weather' } });

    const second = await client.messages.create({
      model: 'gpt',
      max_tokens: 256,
      tools,
      messages: [
        ...question,
        { role: 'assistant', content: first.content },
        { role: 'user', content: [{ type: 'tool_result', tool_use_id: call.id, content: 'sunny 21C' }] },
      ],
    });
    assert.equal(second.stop_reason, 'end_turn');
    assert.deepEqual(second.content, [{ type: 'text', text: 'Echo: sunny 21C' }]);
    const seen = await upstream.waitForRequests(2);
    assert.deepEqual(chatBody(seen[1]).messages.slice(1), [
      {
        role: 'assistant',
        content: null,
        tool_calls: [
          {
            id: call.id,
            type: 'function',
            function: { name: 'get_weather', arguments: '{"location":"Paris","unit":"celsius"}' },
          },
        ],
      },
      { role: 'tool', tool_call_id: call.id, content: 'sunny 21C' },
    ]);
  });

  test('tool arguments that are not a JSON object: a 502, never a tool_use with made-up input', async () => {
    upstream.enqueue({ toolArguments: '{"location": "Par' });
    const requestId = newRequestId('badargs');
    const error = await rejectsWith(
      () =>
        client.messages.create(
          { model: 'gpt', max_tokens: 256, tools, messages: user('weather?') },
          { headers: { 'x-request-id': requestId } },
        ),
      Anthropic.InternalServerError,
      502,
    );
    assertAnthropicError(error, 'api_error');
    assert.match(errorBody(error).error.message, /get_weather/);
    // The upstream answered and counted tokens: the attempt is billed although it failed.
    const row = await ledgerRow(requestId);
    assert.equal(row.status, 'error');
    assert.equal(row.errorCode, 'upstream_bad_response');
    assert.equal(row.usageSource, 'upstream');
    assert.ok(row.completionTokens > 0);
  });

  test('a streamed tool call arrives as input_json_delta and parses into input', async () => {
    const stream = client.messages.stream({
      model: 'gpt',
      max_tokens: 256,
      tools,
      messages: user('weather?'),
    });
    const deltas: string[] = [];
    for await (const event of stream) {
      if (event.type === 'content_block_delta' && event.delta.type === 'input_json_delta') {
        deltas.push(event.delta.partial_json);
      }
    }
    const final = await stream.finalMessage();
    assert.equal(deltas.length, 4, 'one delta per upstream arguments frame');
    assert.equal(final.stop_reason, 'tool_use');
    const block = final.content[0];
    assert.ok(block?.type === 'tool_use');
    assert.deepEqual(block.input, { location: 'Paris', unit: 'celsius' });
    assert.equal(final.usage.output_tokens, 4);
  });
});

describe('streaming', () => {
  test('events arrive one by one, while the upstream is still sending, in Anthropic order', async () => {
    upstream.enqueue({ frames: 5, frameDelayMs: 40 });
    const stream = await client.messages.create({
      model: 'gpt',
      max_tokens: 256,
      stream: true,
      messages: user('one two three four'),
    });
    const types: string[] = [];
    let text = '';
    let upstreamAtFirstDelta: { completed: boolean; status: number | undefined } | undefined;
    for await (const event of stream) {
      types.push(event.type);
      if (event.type === 'content_block_delta' && event.delta.type === 'text_delta') {
        if (upstreamAtFirstDelta === undefined) {
          const rec = upstream.requests[0];
          upstreamAtFirstDelta = { completed: rec?.completedAt !== undefined, status: rec?.status };
        }
        text += event.delta.text;
      }
      if (event.type === 'message_delta') {
        assert.equal(event.delta.stop_reason, 'end_turn');
        assert.equal(event.usage.output_tokens, 5);
        assert.equal(event.usage.input_tokens, 4 + 3);
      }
    }
    assert.deepEqual(upstreamAtFirstDelta, { completed: false, status: 200 });
    assert.equal(text, 'Echo: one two three four');
    assert.deepEqual(types, [
      'message_start',
      'content_block_start',
      ...Array<string>(5).fill('content_block_delta'),
      'content_block_stop',
      'message_delta',
      'message_stop',
    ]);
  });

  test('messages.stream().finalMessage() equals the non-streaming answer (content, stop, usage)', async () => {
    const params = { model: 'gpt', max_tokens: 256, messages: user('same answer both ways') };
    const plain = await client.messages.create(params);
    const requestId = newRequestId('final');
    const stream = client.messages.stream(params, { headers: { 'x-request-id': requestId } });
    const streamed = await stream.finalMessage();
    assert.deepEqual(streamed.content, plain.content);
    assert.equal(streamed.stop_reason, plain.stop_reason);
    assert.equal(streamed.model, plain.model);
    assert.equal(streamed.usage.input_tokens, plain.usage.input_tokens);
    assert.equal(streamed.usage.output_tokens, plain.usage.output_tokens);
    const row = await ledgerRow(requestId);
    assert.equal(row.route, '/v1/messages');
    assert.equal(row.stream, true);
    assert.equal(row.status, 'ok');
    assert.equal(row.usageSource, 'upstream');
    assert.equal(row.completionTokens, plain.usage.output_tokens);
  });

  test('long gaps carry Anthropic ping events (the SDK skips them)', async () => {
    upstream.enqueue({ frames: 1, frameDelayMs: 200 });
    const res = await fetch(`${gw.url}/v1/messages`, {
      method: 'POST',
      headers: {
        'x-api-key': gw.masterKey,
        'content-type': 'application/json',
        'anthropic-version': '2023-06-01',
      },
      body: JSON.stringify({ model: 'gpt', max_tokens: 64, stream: true, messages: user('slow one') }),
    });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/);
    assert.ok(res.headers.get('request-id'));
    const text = await res.text();
    const names = [...text.matchAll(/^event: (\w+)$/gm)].map((m) => m[1]);
    assert.ok(names.includes('ping'), `no ping in ${names.join(',')}`);
    assert.match(text, /event: ping\ndata: \{"type":"ping"\}\n\n/);
    assert.equal(names.at(-1), 'message_stop');
    assert.ok(!text.includes(': keep-alive'), 'heartbeats are Anthropic events, not comments');
  });

  test('a failure after the stream started is an error event the SDK throws', async () => {
    const requestId = newRequestId('midfail');
    const stream = await client.messages.create(
      { model: 'gpt', max_tokens: 256, stream: true, messages: user('[mock:error-in-stream=2] go on') },
      { headers: { 'x-request-id': requestId } },
    );
    let text = '';
    let failure: unknown;
    try {
      for await (const event of stream) {
        if (event.type === 'content_block_delta' && event.delta.type === 'text_delta')
          text += event.delta.text;
      }
    } catch (error) {
      failure = error;
    }
    assert.ok(text.length > 0, 'content before the failure was relayed');
    assert.ok(failure instanceof Anthropic.APIError, `got ${String(failure)}`);
    const body = failure.error as { type: string; error: { type: string } };
    assert.equal(body.type, 'error');
    assert.equal(body.error.type, 'api_error');
    const row = await ledgerRow(requestId);
    assert.equal(row.status, 'error');
  });

  test('client disconnect mid-stream aborts the upstream and is billed client_closed', async () => {
    upstream.enqueue({ frames: 40, frameDelayMs: 25 });
    const requestId = newRequestId('gone');
    const stream = await client.messages.create(
      { model: 'gpt', max_tokens: 256, stream: true, messages: user('a long answer please') },
      { headers: { 'x-request-id': requestId } },
    );
    let deltas = 0;
    for await (const event of stream) {
      if (event.type === 'content_block_delta') deltas++;
      if (deltas === 2) break;
    }
    const aborted = await upstream.waitForAbort();
    assert.equal(aborted.clientAborted, true);
    assert.equal(aborted.completedAt, undefined, 'the upstream was still sending');
    const row = await ledgerRow(requestId);
    assert.equal(row.route, '/v1/messages');
    assert.equal(row.status, 'client_closed');
    assert.equal(row.httpStatus, 499);
    assert.equal(row.usageSource, 'estimated');
    assert.ok(row.promptTokens > 0);
    assert.ok(row.completionTokens >= 2);
  });
});

describe('count_tokens', () => {
  test('an estimate from the same estimator the ledger uses; grows with the prompt', async () => {
    const small = await client.messages.countTokens({ model: 'gpt', messages: user('hello world') });
    assert.equal(
      small.input_tokens,
      estimatePromptTokens({ model: 'gpt', messages: [{ role: 'user', content: 'hello world' }] }),
    );
    const large = await client.messages.countTokens({
      model: 'gpt',
      system: 'You are a careful assistant.',
      messages: user('hello world '.repeat(100)),
    });
    assert.ok(large.input_tokens > small.input_tokens + 200);
    assert.equal(upstream.requests.length, 0, 'counting never calls the upstream');
  });

  test('an unknown model is a 404 here too', async () => {
    const error = await rejectsWith(
      () => client.messages.countTokens({ model: 'nope', messages: user('x') }),
      Anthropic.NotFoundError,
      404,
    );
    assertAnthropicError(error, 'not_found_error');
  });
});

describe('errors in Anthropic shape, as the SDK classes', () => {
  test('400: a body without max_tokens names the field', async () => {
    const error = await rejectsWith(
      () =>
        client.messages.create({
          model: 'gpt',
          messages: user('x'),
        } as Anthropic.MessageCreateParamsNonStreaming),
      Anthropic.BadRequestError,
      400,
    );
    assert.deepEqual(errorBody(error).error, {
      type: 'invalid_request_error',
      message: 'max_tokens: required',
    });
    assert.equal(errorBody(error).type, 'error');
    assert.ok(error.requestID, 'request-id header on errors');
    assert.equal(upstream.requests.length, 0);
  });

  test('400: malformed JSON answers in Anthropic shape too', async () => {
    const res = await fetch(`${gw.url}/v1/messages`, {
      method: 'POST',
      headers: {
        'x-api-key': gw.masterKey,
        'content-type': 'application/json',
        'anthropic-version': '2023-06-01',
      },
      body: '{"model": "gpt",',
    });
    assert.equal(res.status, 400);
    const body = (await res.json()) as { type: string; error: { type: string } };
    assert.equal(body.type, 'error');
    assert.equal(body.error.type, 'invalid_request_error');
  });

  test('401: a wrong x-api-key, and no key at all', async () => {
    const error = await rejectsWith(
      () =>
        sdk({ apiKey: 'sk-wrong-key' }).messages.create({ model: 'gpt', max_tokens: 8, messages: user('x') }),
      Anthropic.AuthenticationError,
      401,
    );
    assertAnthropicError(error, 'authentication_error');
    const res = await fetch(`${gw.url}/v1/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'gpt', max_tokens: 8, messages: user('x') }),
    });
    assert.equal(res.status, 401);
    const body = (await res.json()) as { type: string; error: { type: string; message: string } };
    assert.equal(body.type, 'error');
    assert.equal(body.error.type, 'authentication_error');
    assert.match(body.error.message, /x-api-key/);
    assert.ok(res.headers.get('request-id'));
  });

  test('403: a key not allowed to use the model', async () => {
    const key = await createKey({ name: 'anthropic-other-only', models: ['other'] });
    const restricted = sdk({ apiKey: key });
    const error = await rejectsWith(
      () => restricted.messages.create({ model: 'gpt', max_tokens: 8, messages: user('x') }),
      Anthropic.PermissionDeniedError,
      403,
    );
    assertAnthropicError(error, 'permission_error');
    const allowed = await restricted.messages.create({ model: 'other', max_tokens: 8, messages: user('ok') });
    assert.equal(allowed.model, 'other');
  });

  test('404: an unknown model', async () => {
    const error = await rejectsWith(
      () => client.messages.create({ model: 'claude-unknown', max_tokens: 8, messages: user('x') }),
      Anthropic.NotFoundError,
      404,
    );
    assertAnthropicError(error, 'not_found_error');
  });

  test('413: a body over the limit', async () => {
    const error = await rejectsWith(
      () => client.messages.create({ model: 'gpt', max_tokens: 8, messages: user('x'.repeat(20_000)) }),
      Anthropic.ContentTooLargeError,
      413,
    );
    assertAnthropicError(error, 'request_too_large');
  });

  test('429 from the upstream: RateLimitError with retry-after kept', async () => {
    const error = await rejectsWith(
      () =>
        client.messages.create({
          model: 'gpt',
          max_tokens: 8,
          messages: user('[mock:rate-limit,retry-after=7]'),
        }),
      Anthropic.RateLimitError,
      429,
    );
    assertAnthropicError(error, 'rate_limit_error');
    assert.equal(error.headers?.get('retry-after'), '7');
  });

  test('502 from an upstream 500, 504 from an upstream timeout, 529 from an overloaded upstream', async () => {
    const bad = await rejectsWith(
      () => client.messages.create({ model: 'gpt', max_tokens: 8, messages: user('[mock:status=500]') }),
      Anthropic.InternalServerError,
      502,
    );
    assertAnthropicError(bad, 'api_error');

    const slow = await rejectsWith(
      () => client.messages.create({ model: 'gpt', max_tokens: 8, messages: user('[mock:hang]') }),
      Anthropic.APIError,
      504,
    );
    assertAnthropicError(slow, 'timeout_error');

    const busy = await rejectsWith(
      () => client.messages.create({ model: 'gpt', max_tokens: 8, messages: user('[mock:status=503]') }),
      Anthropic.OverloadedError,
      529,
    );
    assertAnthropicError(busy, 'overloaded_error');
  });

  test('a streaming request that fails before the first event is a plain HTTP error', async () => {
    const error = await rejectsWith(
      () =>
        client.messages.create({
          model: 'gpt',
          max_tokens: 8,
          stream: true,
          messages: user('[mock:status=500]'),
        }),
      Anthropic.InternalServerError,
      502,
    );
    assertAnthropicError(error, 'api_error');
  });

  test('the provider key never reaches the client', async () => {
    const error = await rejectsWith(
      () => client.messages.create({ model: 'gpt', max_tokens: 8, messages: user('[mock:status=401]') }),
      Anthropic.InternalServerError,
      502,
    );
    assert.ok(!JSON.stringify(error.error).includes(canary));
    assertAnthropicError(error, 'api_error');
  });
});
