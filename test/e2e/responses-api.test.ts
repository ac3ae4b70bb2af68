/**
 * The OpenAI Responses API through the gateway, with the official `openai` SDK
 * (`client.responses.create`, `stream: true`, `.stream()`, `.retrieve`,
 * `.delete`, `.inputItems.list`), against OpenAI-, Anthropic- and
 * Gemini-format mock upstreams: plain and streamed answers with their usage,
 * a two-turn function tool round trip (by `previous_response_id` and by
 * sending the items back), a conversation continued on another provider,
 * stored state scoped to its key, `store: false`, and bad input refused
 * naming the field.
 *
 * The mocks echo the last user (or tool result) text, call the first declared
 * tool with `{"location":"Paris","unit":"celsius"}`, and count prompt tokens
 * as words + 3 per message and completion tokens as content frames, the same
 * streamed or not (test/helpers/mock-upstream.ts).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import OpenAI, { APIError, BadRequestError, NotFoundError } from 'openai';
import type {
  FunctionTool,
  Response,
  ResponseInputItem,
  ResponseStreamEvent,
} from 'openai/resources/responses/responses';
import { registerSecret, startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { type MockAnthropic, startMockAnthropic } from '../helpers/mock-anthropic.ts';
import { type MockGemini, startMockGemini } from '../helpers/mock-gemini.ts';
import { type MockUpstream, startMockUpstream } from '../helpers/mock-upstream.ts';

type Upstream = 'openai' | 'anthropic' | 'gemini';
const UPSTREAMS: Upstream[] = ['openai', 'anthropic', 'gemini'];
const TOOL_RESULT = 'sunny and 21 degrees';
const WEATHER: FunctionTool = {
  type: 'function',
  name: 'get_weather',
  description: 'Current weather for a city',
  parameters: {
    type: 'object',
    properties: { location: { type: 'string' }, unit: { type: 'string', enum: ['celsius', 'fahrenheit'] } },
    required: ['location'],
  },
  strict: false,
};

let mocks: { openai: MockUpstream; anthropic: MockAnthropic; gemini: MockGemini };
let gw: TestGateway;
let client: OpenAI;
let otherClient: OpenAI;

before(async () => {
  mocks = {
    openai: await startMockUpstream(),
    anthropic: await startMockAnthropic(),
    gemini: await startMockGemini(),
  };
  gw = await startTestGateway({
    config: {
      providers: {
        openai: { type: 'openai', base_url: mocks.openai.baseUrl, api_key: 'sk-resp-openai' },
        anthropic: { type: 'anthropic', base_url: mocks.anthropic.url, api_key: 'sk-ant-resp' },
        gemini: { type: 'gemini', base_url: mocks.gemini.url, api_key: 'AIza-resp' },
      },
      models: {
        'via-openai': { targets: [{ provider: 'openai', model: 'gpt-4o-mini' }] },
        'via-anthropic': { targets: [{ provider: 'anthropic', model: 'claude-haiku-4-5' }] },
        'via-gemini': { targets: [{ provider: 'gemini', model: 'gemini-2.5-flash' }] },
      },
    },
  });
  client = new OpenAI({ baseURL: gw.baseUrl, apiKey: await createKey('responses-a'), maxRetries: 0 });
  otherClient = new OpenAI({ baseURL: gw.baseUrl, apiKey: await createKey('responses-b'), maxRetries: 0 });
});

after(async () => {
  await gw?.close();
  await Promise.all(Object.values(mocks ?? {}).map((m) => m.close()));
});

async function createKey(name: string): Promise<string> {
  const res = await fetch(`${gw.url}/admin/keys`, {
    method: 'POST',
    headers: { authorization: `Bearer ${gw.masterKey}`, 'content-type': 'application/json' },
    body: JSON.stringify({ name }),
  });
  assert.equal(res.status, 201);
  const created = (await res.json()) as { key: string };
  registerSecret(created.key);
  return created.key;
}

function lastBody(upstream: Upstream): Record<string, unknown> {
  const last = mocks[upstream].requests.at(-1);
  assert.ok(last, `${upstream} received a request`);
  return last.body as Record<string, unknown>;
}

/** Reads a `stream: true` response: its events in order, the text, the calls and the final response. */
async function readStream(stream: AsyncIterable<ResponseStreamEvent>): Promise<{
  types: string[];
  text: string;
  args: Map<string, string>;
  final: Response;
}> {
  const types: string[] = [];
  const sequence: number[] = [];
  const args = new Map<string, string>();
  let text = '';
  let final: Response | undefined;
  for await (const event of stream) {
    types.push(event.type);
    sequence.push(event.sequence_number);
    if (event.type === 'response.output_text.delta') text += event.delta;
    if (event.type === 'response.function_call_arguments.delta') {
      args.set(event.item_id, (args.get(event.item_id) ?? '') + event.delta);
    }
    if (event.type === 'response.completed' || event.type === 'response.incomplete') final = event.response;
  }
  assert.deepEqual(
    sequence,
    sequence.map((_, i) => i),
    'sequence numbers count from 0, one per event',
  );
  assert.equal(types[0], 'response.created');
  assert.equal(types[1], 'response.in_progress');
  assert.ok(final, 'the stream ends with the whole response');
  assert.equal(types.at(-1), `response.${final.status}`);
  return { types, text, args, final };
}

function usageOf(response: Response): { input: number; output: number; total: number } {
  assert.ok(response.usage, 'usage is reported');
  return {
    input: response.usage.input_tokens,
    output: response.usage.output_tokens,
    total: response.usage.total_tokens,
  };
}

for (const upstream of UPSTREAMS) {
  describe(`responses → ${upstream}`, () => {
    const model = `via-${upstream}`;

    test('plain, then streamed (stream: true and .stream()): same text, same usage', async () => {
      const { data: plain, response: http } = await client.responses
        .create({ model, input: 'hello responses', metadata: { ticket: 'T-1' } })
        .withResponse();
      assert.match(plain.id, /^resp_/);
      assert.equal(plain.object, 'response');
      assert.equal(plain.status, 'completed');
      assert.equal(plain.model, model);
      assert.equal(plain.output_text, 'Echo: hello responses');
      assert.deepEqual(plain.metadata, { ticket: 'T-1' });
      assert.equal(plain.output.length, 1);
      const message = plain.output[0]!;
      assert.equal(message.type, 'message');
      assert.ok(message.type === 'message' && message.role === 'assistant');
      assert.deepEqual(usageOf(plain), { input: 5, output: 3, total: 8 });
      assert.equal(http.headers.get('x-switchyard-target')?.startsWith(upstream), true);

      const streamed = await readStream(
        await client.responses.create({ model, input: 'hello responses', stream: true }),
      );
      assert.equal(streamed.text, 'Echo: hello responses');
      assert.deepEqual(streamed.types.slice(2, 4), [
        'response.output_item.added',
        'response.content_part.added',
      ]);
      assert.deepEqual(streamed.types.slice(-4), [
        'response.output_text.done',
        'response.content_part.done',
        'response.output_item.done',
        'response.completed',
      ]);
      assert.deepEqual(
        usageOf(streamed.final),
        usageOf(plain),
        'a stream bills what the same exchange unstreamed does',
      );

      const helper = client.responses.stream({ model, input: 'hello responses' });
      const final = await helper.finalResponse();
      assert.equal(final.output_text, 'Echo: hello responses');
      assert.deepEqual(usageOf(final), usageOf(plain));
    });

    test('two-turn function tool round trip by previous_response_id, unstreamed', async () => {
      const first = await client.responses.create({
        model,
        input: 'weather in Paris please',
        tools: [WEATHER],
      });
      const call = first.output.find((item) => item.type === 'function_call');
      assert.ok(call && call.type === 'function_call', JSON.stringify(first.output));
      assert.equal(call.name, 'get_weather');
      assert.deepEqual(JSON.parse(call.arguments), { location: 'Paris', unit: 'celsius' });
      assert.ok(call.call_id.length > 0);
      const second = await client.responses.create({
        model,
        previous_response_id: first.id,
        tools: [WEATHER],
        input: [{ type: 'function_call_output', call_id: call.call_id, output: TOOL_RESULT }],
      });
      assert.equal(second.output_text, `Echo: ${TOOL_RESULT}`);
      assert.equal(second.previous_response_id, first.id);
      assert.ok(
        JSON.stringify(lastBody(upstream)).includes(TOOL_RESULT),
        'the tool result reached the upstream',
      );
    });

    test('two-turn function tool round trip with the items sent back, streamed', async () => {
      const ask: ResponseInputItem[] = [{ role: 'user', content: 'weather in Paris please' }];
      const first = await readStream(
        await client.responses.create({ model, input: ask, tools: [WEATHER], stream: true, store: false }),
      );
      assert.ok(first.types.includes('response.function_call_arguments.done'));
      const call = first.final.output.find((item) => item.type === 'function_call');
      assert.ok(call && call.type === 'function_call');
      assert.deepEqual(JSON.parse(first.args.get(call.id!)!), { location: 'Paris', unit: 'celsius' });
      const second = await readStream(
        await client.responses.create({
          model,
          tools: [WEATHER],
          stream: true,
          input: [
            ...ask,
            ...(first.final.output as ResponseInputItem[]),
            { type: 'function_call_output', call_id: call.call_id, output: TOOL_RESULT },
          ],
        }),
      );
      assert.equal(second.text, `Echo: ${TOOL_RESULT}`);
      const answer = second.final.output[0];
      assert.ok(answer?.type === 'message' && answer.content[0]?.type === 'output_text');
      assert.equal(answer.content[0].text, `Echo: ${TOOL_RESULT}`);
    });
  });
}

describe('stored responses', () => {
  test('a conversation begun on Anthropic continues on Gemini', async () => {
    const first = await client.responses.create({
      model: 'via-anthropic',
      instructions: 'Answer briefly.',
      input: 'my name is Ada',
    });
    assert.equal(first.output_text, 'Echo: my name is Ada');
    const second = await client.responses.create({
      model: 'via-gemini',
      previous_response_id: first.id,
      input: 'what is my name',
    });
    assert.equal(second.output_text, 'Echo: what is my name');
    const sent = lastBody('gemini') as { contents: Array<{ role: string; parts: Array<{ text?: string }> }> };
    assert.deepEqual(
      sent.contents.map((c) => [c.role, c.parts.map((p) => p.text).join('')]),
      [
        ['user', 'my name is Ada'],
        ['model', 'Echo: my name is Ada'],
        ['user', 'what is my name'],
      ],
    );
    // Instructions are the request's own: not carried over from the previous response.
    assert.equal((lastBody('gemini') as { systemInstruction?: unknown }).systemInstruction, undefined);
  });

  test('retrieve, input items, delete; then 404', async () => {
    const created = await client.responses.create({
      model: 'via-openai',
      input: [
        { role: 'user', content: 'first question' },
        { role: 'assistant', content: 'first answer' },
        { role: 'user', content: [{ type: 'input_text', text: 'second question' }] },
      ],
    });
    const retrieved = await client.responses.retrieve(created.id);
    assert.equal(retrieved.id, created.id);
    assert.equal(retrieved.output_text, 'Echo: second question');
    assert.deepEqual(retrieved.usage, created.usage);

    const items = [];
    for await (const item of client.responses.inputItems.list(created.id, { order: 'asc', limit: 2 }))
      items.push(item);
    assert.equal(items.length, 3, 'all three input items, over two pages');
    assert.deepEqual(
      items.map((item) => (item.type === 'message' ? item.role : item.type)),
      ['user', 'assistant', 'user'],
    );
    assert.ok(items.every((item) => typeof item.id === 'string' && item.id.length > 0));

    const deleted = await fetch(`${gw.baseUrl}/responses/${created.id}`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${client.apiKey}` },
    });
    assert.deepEqual(await deleted.json(), { id: created.id, object: 'response', deleted: true });
    await assert.rejects(client.responses.retrieve(created.id), NotFoundError);
    await assert.rejects(client.responses.delete(created.id), NotFoundError);
  });

  test('responses.delete through the SDK', async () => {
    const created = await client.responses.create({ model: 'via-gemini', input: 'short lived' });
    await client.responses.delete(created.id);
    await assert.rejects(client.responses.retrieve(created.id), NotFoundError);
  });

  test("another key's response is 404 everywhere", async () => {
    const mine = await client.responses.create({ model: 'via-openai', input: 'private' });
    await assert.rejects(otherClient.responses.retrieve(mine.id), NotFoundError);
    await assert.rejects(otherClient.responses.delete(mine.id), NotFoundError);
    await assert.rejects(otherClient.responses.inputItems.list(mine.id), NotFoundError);
    const error = await otherClient.responses
      .create({ model: 'via-openai', previous_response_id: mine.id, input: 'continue' })
      .then(
        () => assert.fail('continued another key’s response'),
        (e: unknown) => e,
      );
    assert.ok(error instanceof NotFoundError);
    assert.equal(error.param, 'previous_response_id');
    // Still there for its owner.
    assert.equal((await client.responses.retrieve(mine.id)).id, mine.id);
  });

  test('store: false keeps nothing', async () => {
    const created = await client.responses.create({ model: 'via-openai', input: 'forget me', store: false });
    // Echoed as OpenAI's API does (the SDK's type leaves it out).
    assert.equal((created as unknown as { store: boolean }).store, false);
    await assert.rejects(client.responses.retrieve(created.id), NotFoundError);
    await assert.rejects(
      client.responses.create({ model: 'via-openai', previous_response_id: created.id, input: 'again' }),
      NotFoundError,
    );
  });
});

describe('translation', () => {
  test('text.format, max_output_tokens, temperature, tool_choice and reasoning reach the upstream', async () => {
    await client.responses.create({
      model: 'via-openai',
      input: 'give me json',
      text: {
        format: {
          type: 'json_schema',
          name: 'answer',
          schema: { type: 'object', properties: {} },
          strict: true,
        },
      },
      max_output_tokens: 64,
      temperature: 0.2,
      tools: [WEATHER],
      tool_choice: { type: 'function', name: 'get_weather' },
      reasoning: { effort: 'low' },
    });
    const sent = lastBody('openai');
    assert.deepEqual(sent['response_format'], {
      type: 'json_schema',
      json_schema: { name: 'answer', schema: { type: 'object', properties: {} }, strict: true },
    });
    assert.equal(sent['max_completion_tokens'], 64);
    assert.equal(sent['temperature'], 0.2);
    assert.deepEqual(sent['tool_choice'], { type: 'function', function: { name: 'get_weather' } });
    assert.equal(sent['reasoning_effort'], 'low');

    await client.responses.create({
      model: 'via-anthropic',
      input: 'think first',
      reasoning: { effort: 'low' },
    });
    assert.deepEqual(lastBody('anthropic')['thinking'], { type: 'enabled', budget_tokens: 2048 });
  });

  test('an image part reaches the upstream as an image', async () => {
    const png =
      'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==';
    const answer = await client.responses.create({
      model: 'via-gemini',
      input: [
        {
          role: 'user',
          content: [
            { type: 'input_text', text: 'describe this' },
            { type: 'input_image', image_url: `data:image/png;base64,${png}`, detail: 'auto' },
          ],
        },
      ],
    });
    assert.equal(answer.output_text, 'Echo: describe this');
    assert.ok(
      JSON.stringify(lastBody('gemini')).includes(`"inlineData":{"mimeType":"image/png","data":"${png}"}`),
    );
  });

  test('max_output_tokens cut short: incomplete, streamed and not', async () => {
    const cut = await client.responses.create({
      model: 'via-openai',
      input: 'a rather long answer please',
      max_output_tokens: 1,
    });
    assert.equal(cut.status, 'incomplete');
    assert.deepEqual(cut.incomplete_details, { reason: 'max_output_tokens' });
    const streamed = await readStream(
      await client.responses.create({
        model: 'via-openai',
        input: 'a rather long answer please',
        max_output_tokens: 1,
        stream: true,
      }),
    );
    assert.equal(streamed.final.status, 'incomplete');
    assert.deepEqual(usageOf(streamed.final), usageOf(cut));
  });

  test('a stream that fails after its start ends with an error event (the SDK throws), and is not stored', async () => {
    const events: ResponseStreamEvent[] = [];
    const stream = await client.responses.create({
      model: 'via-openai',
      input: 'break [mock:error-in-stream=1]',
      stream: true,
    });
    await assert.rejects(async () => {
      for await (const event of stream) events.push(event);
    }, APIError);
    assert.equal(events[0]?.type, 'response.created');
    assert.ok(
      events.some((e) => e.type === 'response.output_text.delta'),
      'the first delta went out',
    );
    assert.ok(!events.some((e) => e.type === 'response.completed'));
    const created = events[0];
    assert.ok(created?.type === 'response.created');
    await assert.rejects(client.responses.retrieve(created.response.id), NotFoundError);
  });

  test('bad input is a 400 naming the field', async () => {
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ model: 'via-openai', input: [] }, 'input'],
      [{ model: 'via-openai', input: 'x', tools: [{ type: 'web_search' }] }, 'tools[0].type'],
      [{ model: 'via-openai', input: [{ role: 'robot', content: 'x' }] }, 'input[0].role'],
      [
        {
          model: 'via-openai',
          input: [{ role: 'user', content: [{ type: 'input_image', image_url: 'ftp://x' }] }],
        },
        'input[0].content[0].image_url',
      ],
      [{ model: 'via-openai', input: 'x', previous_response_id: 'not-an-id' }, 'previous_response_id'],
      [{ model: 'via-openai', input: 'x', background: true }, 'background'],
      [{ model: 'via-openai', input: 'x', max_output_tokens: 0 }, 'max_output_tokens'],
      [
        { model: 'via-openai', input: 'x', text: { format: { type: 'json_schema', name: 'a' } } },
        'text.format.schema',
      ],
    ];
    for (const [body, param] of cases) {
      const error = await client.responses.create(body as never).then(
        () => assert.fail(`accepted ${JSON.stringify(body)}`),
        (e: unknown) => e,
      );
      assert.ok(error instanceof BadRequestError, String(error));
      assert.equal(error.param, param, JSON.stringify(body));
      assert.equal(error.type, 'invalid_request_error');
    }
  });

  test('the ledger has the route, the tokens and the stream flag', async () => {
    const { data: stream, response: http } = await client.responses
      .create({ model: 'via-anthropic', input: 'hello ledger', stream: true })
      .withResponse();
    await readStream(stream);
    const requestId = http.headers.get('x-request-id')!;
    const { ledger, database } = gw.gateway.context;
    await ledger.flush();
    const row = await database.db
      .selectFrom('usage_ledger')
      .select(['route', 'stream', 'prompt_tokens', 'completion_tokens', 'provider'])
      .where('request_id', '=', requestId)
      .executeTakeFirstOrThrow();
    assert.equal(row.route, '/v1/responses');
    assert.equal(Number(row.stream), 1);
    assert.equal(row.provider, 'anthropic');
    assert.deepEqual([Number(row.prompt_tokens), Number(row.completion_tokens)], [5, 3]);
  });
});
