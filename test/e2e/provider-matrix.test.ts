/**
 * Any client speaks to any provider: the translation matrix.
 *
 * {official `openai` SDK (Chat Completions and Responses), official `@anthropic-ai/sdk`} × {openai, anthropic, gemini,
 * azure upstream} × {non-streaming, streaming} × {plain text, tool call round trip,
 * image input}: every cell checks content, tool arguments, finish/stop reasons and
 * usage, and that the upstream received the request in its own wire format.
 *
 * All four mock upstreams share one behaviour (see test/helpers/mock-upstream.ts):
 * they echo the last user (or tool result) text, call the first declared tool with
 * `{"location":"Paris","unit":"celsius"}`, and count prompt tokens as words + 3 per
 * message and completion tokens as content frames, the same with and without
 * streaming. So a plain "hello matrix" costs exactly 5 prompt and 3 completion
 * tokens through every path, and a stream bills exactly what the same exchange
 * without streaming bills.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import type { ChatCompletionMessageParam, ChatCompletionTool } from 'openai/resources/chat/completions';
import type { FunctionTool, Response, ResponseInputItem } from 'openai/resources/responses/responses';
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { type MockAnthropic, startMockAnthropic } from '../helpers/mock-anthropic.ts';
import { type MockGemini, startMockGemini } from '../helpers/mock-gemini.ts';
import { type MockUpstream, startMockUpstream } from '../helpers/mock-upstream.ts';

const PNG =
  'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==';
const TOOL_ARGS = { location: 'Paris', unit: 'celsius' };
const TOOL_RESULT = 'sunny and 21 degrees';

type Upstream = 'openai' | 'anthropic' | 'gemini' | 'azure';
type Client = 'openai-sdk' | 'anthropic-sdk' | 'responses-sdk';
type Scenario = 'text' | 'tool' | 'image';

const UPSTREAMS: Upstream[] = ['openai', 'anthropic', 'gemini', 'azure'];
const CLIENTS: Client[] = ['openai-sdk', 'anthropic-sdk', 'responses-sdk'];
const SCENARIOS: Scenario[] = ['text', 'tool', 'image'];

/** What a client saw of one exchange, normalised across the two APIs. */
interface Outcome {
  text: string;
  toolCalls: Array<{ id: string; name: string; args: unknown }>;
  /** `stop` | `length` | `tool_calls` (Anthropic stop reasons mapped for comparison). */
  finish: string | null;
  /** The raw finish/stop reason as the client's API spells it. */
  rawFinish: string | null;
  usage: { prompt: number; completion: number };
}

interface Mocks {
  openai: MockUpstream;
  azure: MockUpstream;
  anthropic: MockAnthropic;
  gemini: MockGemini;
}

let mocks: Mocks;
let gw: TestGateway;
let openai: OpenAI;
let anthropic: Anthropic;

before(async () => {
  mocks = {
    openai: await startMockUpstream(),
    azure: await startMockUpstream(),
    anthropic: await startMockAnthropic(),
    gemini: await startMockGemini(),
  };
  gw = await startTestGateway({
    config: {
      providers: {
        openai: { type: 'openai', base_url: mocks.openai.baseUrl, api_key: 'sk-matrix-openai' },
        azure: { type: 'azure', endpoint: mocks.azure.url, api_key: 'matrix-azure-key' },
        anthropic: { type: 'anthropic', base_url: mocks.anthropic.url, api_key: 'sk-ant-matrix' },
        gemini: { type: 'gemini', base_url: mocks.gemini.url, api_key: 'AIza-matrix' },
      },
      models: {
        'via-openai': { targets: [{ provider: 'openai', model: 'gpt-4o-mini' }] },
        'via-azure': { targets: [{ provider: 'azure', model: 'gpt-4o-mini' }] },
        'via-anthropic': { targets: [{ provider: 'anthropic', model: 'claude-haiku-4-5' }] },
        'via-gemini': { targets: [{ provider: 'gemini', model: 'gemini-2.5-flash' }] },
      },
    },
  });
  openai = new OpenAI({ baseURL: gw.baseUrl, apiKey: gw.masterKey, maxRetries: 0 });
  anthropic = new Anthropic({ baseURL: gw.url, apiKey: gw.masterKey, maxRetries: 0 });
});

after(async () => {
  await gw?.close();
  await Promise.all(Object.values(mocks ?? {}).map((m) => m.close()));
});

// ---------------------------------------------------------------------------------------
// The OpenAI SDK side
// ---------------------------------------------------------------------------------------

const WEATHER_TOOL: ChatCompletionTool = {
  type: 'function',
  function: {
    name: 'get_weather',
    description: 'Current weather for a city',
    parameters: {
      type: 'object',
      properties: { location: { type: 'string' }, unit: { type: 'string', enum: ['celsius', 'fahrenheit'] } },
      required: ['location'],
    },
  },
};

async function viaOpenAI(
  model: string,
  messages: ChatCompletionMessageParam[],
  stream: boolean,
  tools?: ChatCompletionTool[],
): Promise<Outcome> {
  const params = { model, messages, ...(tools ? { tools } : {}) };
  if (!stream) {
    const res = await openai.chat.completions.create(params);
    const choice = res.choices[0]!;
    return {
      text: choice.message.content ?? '',
      toolCalls: (choice.message.tool_calls ?? []).map((c) => {
        assert.equal(c.type, 'function');
        return { id: c.id, name: c.function.name, args: JSON.parse(c.function.arguments) };
      }),
      finish: choice.finish_reason,
      rawFinish: choice.finish_reason,
      usage: { prompt: res.usage!.prompt_tokens, completion: res.usage!.completion_tokens },
    };
  }
  const chunks = await openai.chat.completions.create({
    ...params,
    stream: true,
    stream_options: { include_usage: true },
  });
  let text = '';
  let finish: string | null = null;
  let usage: Outcome['usage'] | undefined;
  const calls = new Map<number, { id: string; name: string; args: string }>();
  for await (const chunk of chunks) {
    if (chunk.usage) usage = { prompt: chunk.usage.prompt_tokens, completion: chunk.usage.completion_tokens };
    for (const choice of chunk.choices) {
      text += choice.delta.content ?? '';
      for (const call of choice.delta.tool_calls ?? []) {
        const entry = calls.get(call.index) ?? { id: '', name: '', args: '' };
        entry.id ||= call.id ?? '';
        entry.name ||= call.function?.name ?? '';
        entry.args += call.function?.arguments ?? '';
        calls.set(call.index, entry);
      }
      finish = choice.finish_reason ?? finish;
    }
  }
  assert.ok(usage, 'the stream ends with a usage chunk');
  return {
    text,
    toolCalls: [...calls.values()].map((c) => ({ id: c.id, name: c.name, args: JSON.parse(c.args) })),
    finish,
    rawFinish: finish,
    usage,
  };
}

// ---------------------------------------------------------------------------------------
// The Anthropic SDK side
// ---------------------------------------------------------------------------------------

const WEATHER_TOOL_ANTHROPIC: Anthropic.Tool = {
  name: 'get_weather',
  description: 'Current weather for a city',
  input_schema: {
    type: 'object',
    properties: { location: { type: 'string' }, unit: { type: 'string', enum: ['celsius', 'fahrenheit'] } },
    required: ['location'],
  },
};

const STOP_AS_FINISH: Record<string, string> = {
  end_turn: 'stop',
  stop_sequence: 'stop',
  max_tokens: 'length',
  tool_use: 'tool_calls',
};

async function viaAnthropic(
  model: string,
  messages: Anthropic.MessageParam[],
  stream: boolean,
  tools?: Anthropic.Tool[],
): Promise<Outcome> {
  const params = { model, max_tokens: 256, messages, ...(tools ? { tools } : {}) };
  if (!stream) {
    const res = await anthropic.messages.create(params);
    assert.equal(res.type, 'message');
    assert.equal(res.role, 'assistant');
    return {
      text: res.content.map((b) => (b.type === 'text' ? b.text : '')).join(''),
      toolCalls: res.content.flatMap((b) =>
        b.type === 'tool_use' ? [{ id: b.id, name: b.name, args: b.input }] : [],
      ),
      finish: STOP_AS_FINISH[res.stop_reason ?? ''] ?? res.stop_reason,
      rawFinish: res.stop_reason,
      usage: { prompt: res.usage.input_tokens, completion: res.usage.output_tokens },
    };
  }
  const events = await anthropic.messages.create({ ...params, stream: true });
  let text = '';
  let stop: string | null = null;
  let prompt = 0;
  let completion = 0;
  const blocks = new Map<number, { id: string; name: string; json: string }>();
  const order: string[] = [];
  for await (const event of events) {
    order.push(event.type);
    switch (event.type) {
      case 'message_start':
        prompt = event.message.usage.input_tokens;
        break;
      case 'content_block_start':
        if (event.content_block.type === 'tool_use') {
          blocks.set(event.index, { id: event.content_block.id, name: event.content_block.name, json: '' });
        }
        break;
      case 'content_block_delta':
        if (event.delta.type === 'text_delta') text += event.delta.text;
        if (event.delta.type === 'input_json_delta')
          blocks.get(event.index)!.json += event.delta.partial_json;
        break;
      case 'message_delta':
        stop = event.delta.stop_reason;
        completion = event.usage.output_tokens;
        // Usage only known at the end of a translated stream is carried here (cumulative).
        if (typeof event.usage.input_tokens === 'number' && event.usage.input_tokens > 0) {
          prompt = event.usage.input_tokens;
        }
        break;
    }
  }
  assert.equal(order[0], 'message_start');
  assert.equal(order.at(-1), 'message_stop');
  return {
    text,
    toolCalls: [...blocks.values()].map((b) => ({
      id: b.id,
      name: b.name,
      args: JSON.parse(b.json || '{}'),
    })),
    finish: STOP_AS_FINISH[stop ?? ''] ?? stop,
    rawFinish: stop,
    usage: { prompt, completion },
  };
}

// ---------------------------------------------------------------------------------------
// The OpenAI SDK's Responses API side (`client.responses.create`)
// ---------------------------------------------------------------------------------------

async function viaResponses(
  model: string,
  input: ResponseInputItem[],
  stream: boolean,
  tools?: FunctionTool[],
): Promise<Outcome> {
  // Stateless (`store: false`, the whole conversation sent each turn): the matrix checks translation.
  const params = { model, input, store: false, ...(tools ? { tools } : {}) };
  let response: Response | undefined;
  if (!stream) response = await openai.responses.create(params);
  else {
    let text = '';
    for await (const event of await openai.responses.create({ ...params, stream: true })) {
      if (event.type === 'response.output_text.delta') text += event.delta;
      if (event.type === 'response.completed' || event.type === 'response.incomplete')
        response = event.response;
    }
    assert.ok(response, 'the stream ends with the whole response');
    const streamedText = response.output.flatMap((item) =>
      item.type === 'message'
        ? item.content.map((part) => (part.type === 'output_text' ? part.text : ''))
        : [],
    );
    assert.equal(text, streamedText.join(''), 'the deltas add up to the final text');
  }
  const toolCalls = response.output.flatMap((item) =>
    item.type === 'function_call'
      ? [{ id: item.call_id, name: item.name, args: JSON.parse(item.arguments) }]
      : [],
  );
  const text = response.output
    .flatMap((item) => (item.type === 'message' ? item.content : []))
    .map((part) => (part.type === 'output_text' ? part.text : ''))
    .join('');
  const finish = response.status === 'incomplete' ? 'length' : toolCalls.length > 0 ? 'tool_calls' : 'stop';
  return {
    text,
    toolCalls,
    finish,
    rawFinish: response.status ?? null,
    usage: { prompt: response.usage!.input_tokens, completion: response.usage!.output_tokens },
  };
}

const WEATHER_TOOL_RESPONSES: FunctionTool = {
  type: 'function',
  name: 'get_weather',
  description: 'Current weather for a city',
  parameters: WEATHER_TOOL.function.parameters ?? null,
  strict: false,
};

// ---------------------------------------------------------------------------------------
// Scenarios, spelled once per client API
// ---------------------------------------------------------------------------------------

interface Exchange {
  /** The first call; for `tool` the model asks for the tool. */
  first(): Promise<Outcome>;
  /** `tool` only: sends the tool result back for the final answer. */
  second?(call: Outcome['toolCalls'][number]): Promise<Outcome>;
}

function exchange(client: Client, model: string, scenario: Scenario, stream: boolean): Exchange {
  if (client === 'responses-sdk') return responsesExchange(model, scenario, stream);
  if (client === 'openai-sdk') {
    const ask: ChatCompletionMessageParam = { role: 'user', content: 'weather in Paris please' };
    switch (scenario) {
      case 'text':
        return { first: () => viaOpenAI(model, [{ role: 'user', content: 'hello matrix' }], stream) };
      case 'image':
        return {
          first: () =>
            viaOpenAI(
              model,
              [
                {
                  role: 'user',
                  content: [
                    { type: 'text', text: 'describe this' },
                    { type: 'image_url', image_url: { url: `data:image/png;base64,${PNG}` } },
                  ],
                },
              ],
              stream,
            ),
        };
      case 'tool':
        return {
          first: () => viaOpenAI(model, [ask], stream, [WEATHER_TOOL]),
          second: (call) =>
            viaOpenAI(
              model,
              [
                ask,
                {
                  role: 'assistant',
                  content: null,
                  tool_calls: [
                    {
                      id: call.id,
                      type: 'function',
                      function: { name: call.name, arguments: JSON.stringify(call.args) },
                    },
                  ],
                },
                { role: 'tool', tool_call_id: call.id, content: TOOL_RESULT },
              ],
              stream,
              [WEATHER_TOOL],
            ),
        };
    }
  }
  const ask: Anthropic.MessageParam = { role: 'user', content: 'weather in Paris please' };
  switch (scenario) {
    case 'text':
      return { first: () => viaAnthropic(model, [{ role: 'user', content: 'hello matrix' }], stream) };
    case 'image':
      return {
        first: () =>
          viaAnthropic(
            model,
            [
              {
                role: 'user',
                content: [
                  { type: 'text', text: 'describe this' },
                  { type: 'image', source: { type: 'base64', media_type: 'image/png', data: PNG } },
                ],
              },
            ],
            stream,
          ),
      };
    case 'tool':
      return {
        first: () => viaAnthropic(model, [ask], stream, [WEATHER_TOOL_ANTHROPIC]),
        second: (call) =>
          viaAnthropic(
            model,
            [
              ask,
              {
                role: 'assistant',
                content: [{ type: 'tool_use', id: call.id, name: call.name, input: call.args as object }],
              },
              {
                role: 'user',
                content: [{ type: 'tool_result', tool_use_id: call.id, content: TOOL_RESULT }],
              },
            ],
            stream,
            [WEATHER_TOOL_ANTHROPIC],
          ),
      };
  }
}

function responsesExchange(model: string, scenario: Scenario, stream: boolean): Exchange {
  const ask: ResponseInputItem = { role: 'user', content: 'weather in Paris please' };
  switch (scenario) {
    case 'text':
      return { first: () => viaResponses(model, [{ role: 'user', content: 'hello matrix' }], stream) };
    case 'image':
      return {
        first: () =>
          viaResponses(
            model,
            [
              {
                role: 'user',
                content: [
                  { type: 'input_text', text: 'describe this' },
                  { type: 'input_image', image_url: `data:image/png;base64,${PNG}`, detail: 'auto' },
                ],
              },
            ],
            stream,
          ),
      };
    case 'tool':
      return {
        first: () => viaResponses(model, [ask], stream, [WEATHER_TOOL_RESPONSES]),
        second: (call) =>
          viaResponses(
            model,
            [
              ask,
              {
                type: 'function_call',
                call_id: call.id,
                name: call.name,
                arguments: JSON.stringify(call.args),
              },
              { type: 'function_call_output', call_id: call.id, output: TOOL_RESULT },
            ],
            stream,
            [WEATHER_TOOL_RESPONSES],
          ),
      };
  }
}

// ---------------------------------------------------------------------------------------
// What each upstream must have received, in its own wire format
// ---------------------------------------------------------------------------------------

function lastRequestBody(upstream: Upstream): Record<string, unknown> {
  const requests = mocks[upstream].requests;
  const last = requests[requests.length - 1];
  assert.ok(last, `${upstream} received a request`);
  return last.body as Record<string, unknown>;
}

function assertUpstreamSawImage(upstream: Upstream): void {
  const body = JSON.stringify(lastRequestBody(upstream));
  switch (upstream) {
    case 'openai':
    case 'azure':
      assert.ok(body.includes(`"url":"data:image/png;base64,${PNG}"`), `${upstream}: image_url part`);
      break;
    case 'anthropic':
      assert.ok(
        body.includes(`"source":{"type":"base64","media_type":"image/png","data":"${PNG}"}`),
        'anthropic: base64 image block',
      );
      break;
    case 'gemini':
      assert.ok(
        body.includes(`"inlineData":{"mimeType":"image/png","data":"${PNG}"}`),
        'gemini: inlineData part',
      );
      break;
  }
}

function assertUpstreamSawToolResult(upstream: Upstream, callId: string): void {
  const body = lastRequestBody(upstream);
  const text = JSON.stringify(body);
  switch (upstream) {
    case 'openai':
    case 'azure':
      assert.ok(text.includes(`"role":"tool"`) && text.includes(`"tool_call_id":${JSON.stringify(callId)}`));
      break;
    case 'anthropic':
      assert.ok(text.includes(`"type":"tool_result","tool_use_id":${JSON.stringify(callId)}`));
      break;
    case 'gemini':
      // Gemini's functionResponse is matched by name; the gateway recovered it from the call id.
      assert.ok(text.includes('"functionResponse":{"name":"get_weather"'), text);
      break;
  }
  assert.ok(text.includes(TOOL_RESULT), 'the tool result text reached the upstream');
}

// ---------------------------------------------------------------------------------------
// The matrix
// ---------------------------------------------------------------------------------------

/** Answers of the non-streaming cells, compared with the streaming ones (usage exactness). */
const settled = new Map<string, Outcome[]>();
const cellKey = (client: Client, upstream: Upstream, scenario: Scenario) =>
  `${client}|${upstream}|${scenario}`;

for (const client of CLIENTS) {
  for (const upstream of UPSTREAMS) {
    describe(`${client} → ${upstream}`, () => {
      const model = `via-${upstream}`;
      for (const scenario of SCENARIOS) {
        // Non-streaming first: the streaming cell compares its usage with it.
        for (const stream of [false, true]) {
          test(`${scenario}, ${stream ? 'streaming' : 'non-streaming'}`, async () => {
            const ex = exchange(client, model, scenario, stream);
            const outcomes: Outcome[] = [];
            const first = await ex.first();
            outcomes.push(first);
            if (scenario === 'text') {
              assert.equal(first.text, 'Echo: hello matrix');
              assert.equal(first.finish, 'stop');
              assert.deepEqual(first.toolCalls, []);
              assert.deepEqual(first.usage, { prompt: 5, completion: 3 });
            } else if (scenario === 'image') {
              assert.equal(first.text, 'Echo: describe this');
              assert.equal(first.finish, 'stop');
              assertUpstreamSawImage(upstream);
            } else {
              assert.equal(first.text, '');
              assert.equal(first.finish, 'tool_calls');
              assert.equal(first.toolCalls.length, 1);
              const call = first.toolCalls[0]!;
              assert.equal(call.name, 'get_weather');
              assert.deepEqual(call.args, TOOL_ARGS);
              assert.ok(call.id.length > 0, 'the tool call has an id the client can answer');
              const second = await ex.second!(call);
              outcomes.push(second);
              assertUpstreamSawToolResult(upstream, call.id);
              assert.equal(second.text, `Echo: ${TOOL_RESULT}`);
              assert.equal(second.finish, 'stop');
              assert.deepEqual(second.toolCalls, []);
            }
            for (const o of outcomes) {
              assert.ok(
                o.usage.prompt > 0 && o.usage.completion > 0,
                `usage reported: ${JSON.stringify(o.usage)}`,
              );
              if (client === 'anthropic-sdk')
                assert.ok(o.rawFinish === 'end_turn' || o.rawFinish === 'tool_use');
            }
            const key = cellKey(client, upstream, scenario);
            if (!stream) settled.set(key, outcomes);
            else {
              const plain = settled.get(key);
              assert.ok(plain, 'the non-streaming cell ran first');
              assert.deepEqual(
                outcomes.map((o) => o.usage),
                plain.map((o) => o.usage),
                'a stream bills exactly what the same exchange without streaming bills',
              );
            }
          });
        }
      }
    });
  }
}
