/**
 * The official `@anthropic-ai/sdk` → gateway → mock Anthropic: an Anthropic
 * request to an Anthropic target is passed through, not translated. The
 * upstream receives the client's body as written (only `model` replaced by the
 * target's model id), and the client receives the upstream's answer or events
 * as sent (only `model` replaced by the name it asked for). Each is compared
 * with what the mock answers when asked directly, so "unchanged" is checked
 * against the real thing rather than a hand-written expectation.
 *
 * Raw attempts keep the dispatch machinery: a failing Anthropic target falls
 * back to an OpenAI target through the translation, and every attempt leaves a
 * ledger row with the upstream's exact usage (cache tokens included).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, beforeEach, describe, test } from 'node:test';
import Anthropic from '@anthropic-ai/sdk';
import type { LedgerRow } from '../../src/ledger/usage-ledger.ts';
import { registerSecret, startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { type MockAnthropic, startMockAnthropic } from '../helpers/mock-anthropic.ts';
import { type MockUpstream, startMockUpstream } from '../helpers/mock-upstream.ts';

const ANTHROPIC_KEY = `sk-ant-CANARY-${randomBytes(10).toString('hex')}`;
const OPENAI_KEY = `sk-CANARY-${randomBytes(10).toString('hex')}`;
registerSecret(ANTHROPIC_KEY);
registerSecret(OPENAI_KEY);

const UPSTREAM_MODEL = 'claude-sonnet-4-5';
const PDF = Buffer.from('%PDF-1.4 mock document').toString('base64');

let claude: MockAnthropic;
let openai: MockUpstream;
let gw: TestGateway;
let client: Anthropic;
const rows: LedgerRow[] = [];
const rowWaiters: Array<() => void> = [];

type Json = Record<string, unknown>;
interface Frame {
  event: string;
  data: Json;
}

const newRequestId = (label: string) => `${label}-${randomBytes(6).toString('hex')}`;

/** Resolves with the request's ledger rows once `count` of them were written (rows follow the response). */
async function ledgerRows(requestId: string, count = 1): Promise<LedgerRow[]> {
  for (;;) {
    const found = rows.filter((row) => row.clientRequestId === requestId);
    if (found.length >= count) return found;
    await new Promise<void>((resolve) => rowWaiters.push(resolve));
  }
}

/** Everything the passthrough tests send that the canonical (OpenAI) shape cannot carry. */
function richRequest(model: string): Json {
  return {
    model,
    max_tokens: 2048,
    system: [{ type: 'text', text: 'You read documents.', cache_control: { type: 'ephemeral', ttl: '1h' } }],
    messages: [
      {
        role: 'user',
        content: [
          {
            type: 'document',
            source: { type: 'base64', media_type: 'application/pdf', data: PDF },
            title: 'Spec',
            citations: { enabled: true },
          },
          { type: 'text', text: 'summarise the document' },
        ],
      },
    ],
    top_k: 5,
    thinking: { type: 'enabled', budget_tokens: 1024 },
    tools: [{ type: 'web_search_20250305', name: 'web_search', max_uses: 1 }],
    tool_choice: { type: 'none' },
    // A field newer than the gateway: it must still reach the upstream.
    future_option: { level: 3, flags: ['a', 'b'] },
  };
}

/** The error a non-streaming request fails with (the test fails if it succeeds). */
async function rejection(params: Json): Promise<unknown> {
  try {
    await client.messages.create(params as unknown as Anthropic.MessageCreateParamsNonStreaming);
  } catch (error) {
    return error;
  }
  return assert.fail('expected the request to fail');
}

function withoutModel(body: unknown): Json {
  const { model: _model, ...rest } = body as Json;
  return rest;
}

/** Asks the mock directly (no gateway) with the body the gateway should have sent. */
async function askMockDirectly(body: Json): Promise<Response> {
  const res = await fetch(`${claude.url}/v1/messages`, {
    method: 'POST',
    headers: {
      'x-api-key': ANTHROPIC_KEY,
      'anthropic-version': '2023-06-01',
      'content-type': 'application/json',
    },
    body: JSON.stringify(body),
  });
  assert.equal(res.status, 200);
  return res;
}

function parseFrames(text: string): Frame[] {
  const frames: Frame[] = [];
  for (const block of text.split('\n\n')) {
    if (block.trim() === '') continue;
    const event = /^event: (.*)$/m.exec(block)?.[1];
    const data = [...block.matchAll(/^data: (.*)$/gm)].map((m) => m[1]).join('\n');
    assert.ok(event, `frame without an event line: ${block}`);
    frames.push({ event, data: JSON.parse(data) as Json });
  }
  return frames;
}

/** The mock's events with message_start naming the model the client asked for, as the gateway relays them. */
function asRelayed(frames: Frame[], model: string): Frame[] {
  return frames.map((frame) => {
    if (frame.event !== 'message_start') return frame;
    const message = frame.data['message'] as Json;
    return { event: frame.event, data: { ...frame.data, message: { ...message, model } } };
  });
}

before(async () => {
  claude = await startMockAnthropic({ requireApiKey: ANTHROPIC_KEY });
  openai = await startMockUpstream({ requireApiKey: OPENAI_KEY });
  gw = await startTestGateway({
    config: {
      // Gateway heartbeats would add pings of their own to the relayed sequence.
      server: { heartbeat_ms: 600_000 },
      providers: {
        anthropic: { type: 'anthropic', api_key: ANTHROPIC_KEY, base_url: claude.url },
        up: { type: 'openai', api_key: OPENAI_KEY, base_url: openai.baseUrl },
      },
      models: {
        claude: {
          retries: { max: 0 },
          circuit_breaker: { enabled: false },
          targets: [{ provider: 'anthropic', model: UPSTREAM_MODEL }],
        },
        gpt: { targets: [{ provider: 'up', model: 'gpt-4o-mini' }] },
        mixed: {
          retries: { max: 0 },
          circuit_breaker: { enabled: false },
          targets: [
            { provider: 'anthropic', model: UPSTREAM_MODEL },
            { provider: 'up', model: 'gpt-4o-mini' },
          ],
        },
      },
    },
  });
  const ledger = gw.gateway.context.ledger;
  const record = ledger.record.bind(ledger);
  ledger.record = (row: LedgerRow): void => {
    record(row);
    rows.push(row);
    for (const wake of rowWaiters.splice(0)) wake();
  };
  client = new Anthropic({ baseURL: gw.url, apiKey: gw.masterKey, maxRetries: 0 });
});

after(async () => {
  await gw?.close();
  await claude?.close();
  await openai?.close();
});

beforeEach(() => {
  claude.reset();
  openai.reset();
});

describe('passthrough JSON', () => {
  test('the upstream receives the client body as written, only model replaced', async () => {
    const params = richRequest('claude');
    await client.messages.create(params as unknown as Anthropic.MessageCreateParamsNonStreaming);
    const sent = claude.requests.at(-1)!;
    assert.equal(sent.path, '/v1/messages');
    assert.equal((sent.body as Json)['model'], UPSTREAM_MODEL);
    assert.deepEqual(withoutModel(sent.body), withoutModel(params));
  });

  test('the answer reaches the client as the upstream sent it (thinking, signature, cache usage), model renamed', async () => {
    const shaping = { completionId: 'msg_passthrough_1', cacheRead: 11, cacheCreation: 7 };
    claude.enqueue(shaping);
    const requestId = newRequestId('json');
    const message = await client.messages.create(
      richRequest('claude') as unknown as Anthropic.MessageCreateParamsNonStreaming,
      { headers: { 'x-request-id': requestId } },
    );
    claude.enqueue(shaping);
    const direct = (await (await askMockDirectly(richRequest(UPSTREAM_MODEL))).json()) as Json;
    assert.equal(direct['model'], UPSTREAM_MODEL);
    assert.deepEqual(message, { ...direct, model: 'claude' });
    const thinking = message.content.find((block) => block.type === 'thinking');
    assert.equal(thinking?.signature, 'sig_mock');
    assert.equal(message.usage.cache_read_input_tokens, 11);
    assert.equal((message.usage as unknown as Json)['service_tier'], 'standard');

    const [row] = await ledgerRows(requestId);
    const usage = message.usage;
    assert.equal(row?.status, 'ok');
    assert.equal(row?.route, '/v1/messages');
    assert.equal(row?.provider, 'anthropic');
    assert.equal(row?.modelUsed, UPSTREAM_MODEL);
    assert.equal(row?.usageSource, 'upstream');
    assert.equal(row?.promptTokens, usage.input_tokens + 11 + 7);
    assert.equal(row?.cachedTokens, 11);
    assert.equal(row?.completionTokens, usage.output_tokens);
  });

  test('a failing Anthropic target (529) falls back to an OpenAI target through the translation', async () => {
    claude.enqueue({ kind: 'status', status: 529 });
    const requestId = newRequestId('fallback');
    const { data: message, response } = await client.messages
      .create(
        { model: 'mixed', max_tokens: 64, messages: [{ role: 'user', content: 'fall back please' }] },
        { headers: { 'x-request-id': requestId } },
      )
      .withResponse();
    assert.equal(message.model, 'mixed');
    assert.deepEqual(message.content, [{ type: 'text', text: 'Echo: fall back please' }]);
    assert.equal(response.headers.get('x-switchyard-fallback-reason'), 'upstream_overloaded');
    assert.equal(response.headers.get('x-switchyard-provider'), 'up');
    assert.equal(claude.requests.length, 1);
    assert.equal(claude.requests[0]?.status, 529);
    // The OpenAI target got the translated request, in its own wire format.
    const translated = openai.requests.at(-1)?.body as Json;
    assert.equal(translated['model'], 'gpt-4o-mini');
    assert.deepEqual(translated['messages'], [{ role: 'user', content: 'fall back please' }]);

    const attempts = await ledgerRows(requestId, 2);
    assert.deepEqual(
      attempts.map((row) => [row.provider, row.status, row.errorCode]),
      [
        ['anthropic', 'error', 'upstream_overloaded'],
        ['up', 'ok', null],
      ],
    );
  });

  test('a request only Anthropic can carry never goes to a target that cannot carry it', async () => {
    // Its Anthropic target down, the model has nowhere else to send it: the Anthropic failure stands.
    claude.enqueue({ kind: 'status', status: 529 });
    const overloaded = await rejection(richRequest('mixed'));
    assert.ok(overloaded instanceof Anthropic.APIError, `got ${String(overloaded)}`);
    assert.equal(overloaded.status, 529);
    assert.equal(claude.requests.length, 1);
    assert.equal(openai.requests.length, 0);

    // A model without Anthropic targets: a clear 400 naming the field, nothing sent upstream.
    const refused = await rejection(richRequest('gpt'));
    assert.ok(refused instanceof Anthropic.BadRequestError, `got ${String(refused)}`);
    const body = refused.error as { error: { type: string; message: string } };
    assert.equal(body.error.type, 'invalid_request_error');
    assert.match(body.error.message, /only supported when the model's provider is Anthropic/);
    assert.equal(openai.requests.length, 0);
  });
});

describe('passthrough streams', () => {
  test('events are relayed as they arrive, the same sequence the mock sent', async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const shaping = { completionId: 'msg_stream_1', frames: 5, cacheRead: 3, cacheCreation: 2 };
    claude.enqueue({ ...shaping, gate, gateAfterFrames: 2 });
    const requestId = newRequestId('stream');
    const params = { ...richRequest('claude'), stream: true };
    const stream = await client.messages.create(params as unknown as Anthropic.MessageCreateParamsStreaming, {
      headers: { 'x-request-id': requestId },
    });
    const iterator = stream[Symbol.asyncIterator]();
    const received: Json[] = [];
    let first = await iterator.next();
    assert.equal(first.done, false);
    received.push(first.value as unknown as Json);
    // The gate holds the upstream after two text deltas: the client is reading before it finished.
    while (!(received.at(-1)?.['type'] === 'content_block_delta' && received.length > 5)) {
      first = await iterator.next();
      assert.equal(first.done, false, 'stream ended while the upstream was held');
      received.push(first.value as unknown as Json);
    }
    assert.equal(claude.requests.at(-1)?.completedAt, undefined, 'the upstream is still held at the gate');
    release();
    for (let next = await iterator.next(); !next.done; next = await iterator.next()) {
      received.push(next.value as unknown as Json);
    }
    assert.deepEqual(withoutModel(claude.requests.at(-1)?.body), withoutModel(params));

    claude.enqueue(shaping);
    const direct = parseFrames(await (await askMockDirectly({ ...params, model: UPSTREAM_MODEL })).text());
    const expected = asRelayed(direct, 'claude').filter((frame) => frame.event !== 'ping');
    assert.deepEqual(
      received,
      expected.map((frame) => frame.data),
    );
    const deltas = received.map((event) => (event['delta'] as Json | undefined)?.['type']);
    assert.ok(deltas.includes('thinking_delta') && deltas.includes('signature_delta'));

    const [row] = await ledgerRows(requestId);
    assert.equal(row?.status, 'ok');
    assert.equal(row?.stream, true);
    assert.equal(row?.usageSource, 'upstream');
    const start = received[0]?.['message'] as { usage: { input_tokens: number } };
    assert.equal(row?.promptTokens, start.usage.input_tokens + 3 + 2);
    assert.equal(row?.cachedTokens, 3);
    assert.equal(row?.completionTokens, 5);
  });

  test('on the wire: event names, pings and data are those of the upstream', async () => {
    const shaping = { completionId: 'msg_stream_2', frames: 3 };
    claude.enqueue(shaping);
    const params = { ...richRequest('claude'), stream: true };
    const response = await client.messages
      .create(params as unknown as Anthropic.MessageCreateParamsStreaming)
      .asResponse();
    assert.match(response.headers.get('content-type') ?? '', /^text\/event-stream/);
    assert.equal(response.headers.get('x-switchyard-provider'), 'anthropic');
    const relayed = parseFrames(await response.text());
    claude.enqueue(shaping);
    const direct = parseFrames(await (await askMockDirectly({ ...params, model: UPSTREAM_MODEL })).text());
    assert.ok(direct.some((frame) => frame.event === 'ping'));
    assert.deepEqual(relayed, asRelayed(direct, 'claude'));
  });

  test("a mid-stream error event reaches the SDK as Anthropic's error, and is on the ledger", async () => {
    claude.enqueue({ kind: 'errorInStream', afterFrames: 2, cacheRead: 4 });
    const requestId = newRequestId('midfail');
    const stream = await client.messages.create(
      { model: 'claude', max_tokens: 64, stream: true, messages: [{ role: 'user', content: 'go on' }] },
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
    const body = failure.error as { type: string; error: { type: string; message: string } };
    assert.equal(body.type, 'error');
    assert.equal(body.error.type, 'overloaded_error');
    assert.equal(body.error.message, 'Overloaded');
    const [row] = await ledgerRows(requestId);
    assert.equal(row?.status, 'error');
    assert.equal(row?.errorCode, 'upstream_overloaded');
    assert.equal(row?.cachedTokens, 4);
    assert.ok((row?.promptTokens ?? 0) > 4);
  });

  test('a client abort mid-stream reaches the upstream and still leaves a ledger row', async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    claude.enqueue({ frames: 8, gate, gateAfterFrames: 2, cacheRead: 5 });
    const requestId = newRequestId('gone');
    const stream = await client.messages.create(
      { model: 'claude', max_tokens: 64, stream: true, messages: [{ role: 'user', content: 'a long one' }] },
      { headers: { 'x-request-id': requestId } },
    );
    let deltas = 0;
    let inputTokens = 0;
    for await (const event of stream) {
      if (event.type === 'message_start') inputTokens = event.message.usage.input_tokens;
      if (event.type === 'content_block_delta') deltas++;
      if (deltas === 2) break;
    }
    const aborted = await claude.waitForAbort();
    release();
    assert.equal(aborted.clientAborted, true);
    assert.equal(aborted.completedAt, undefined, 'the upstream was still sending');
    const [row] = await ledgerRows(requestId);
    assert.equal(row?.status, 'client_closed');
    assert.equal(row?.httpStatus, 499);
    // The upstream's input count (message_start) is known exactly; the output only as relayed.
    assert.equal(row?.promptTokens, inputTokens + 5);
    assert.equal(row?.cachedTokens, 5);
    assert.ok((row?.completionTokens ?? 0) >= 2);
  });
});
