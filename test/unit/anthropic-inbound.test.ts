/**
 * Inbound Anthropic protocol: Messages request → canonical request, canonical
 * completion → Message, canonical chunks → the exact Anthropic event sequence,
 * error mapping and validation messages.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { toAnthropicError } from '../../src/api/anthropic/anthropic-inbound-error.ts';
import {
  fromAnthropicPrompt,
  fromAnthropicRequest,
} from '../../src/api/anthropic/anthropic-inbound-request.ts';
import { toAnthropicMessage } from '../../src/api/anthropic/anthropic-inbound-response.ts';
import {
  AnthropicInboundStreamEncoder,
  encodeEvent,
} from '../../src/api/anthropic/anthropic-inbound-stream.ts';
import {
  validateCountTokensRequest,
  validateMessagesRequest,
} from '../../src/api/anthropic/anthropic-validate.ts';
import { GatewayError } from '../../src/core/errors.ts';
import type { ChatCompletion, ChatCompletionChunk, ChunkChoice, Usage } from '../../src/core/types.ts';
import type { MessageStreamEvent, MessagesRequest } from '../../src/providers/anthropic/anthropic-wire.ts';

const PNG =
  'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==';

function request(extra: Partial<MessagesRequest> = {}): MessagesRequest {
  return validateMessagesRequest({
    model: 'claude-x',
    max_tokens: 100,
    messages: [{ role: 'user', content: 'Hello' }],
    ...extra,
  });
}

function completion(
  message: ChatCompletion['choices'][0]['message'],
  finish: string,
  usage?: Usage,
): ChatCompletion {
  return {
    id: 'chatcmpl-1',
    object: 'chat.completion',
    created: 1,
    model: 'gpt-4o-mini',
    choices: [{ index: 0, message, finish_reason: finish as never }],
    ...(usage ? { usage } : {}),
  };
}

const usage = (prompt: number, completionTokens: number, cached = 0): Usage => ({
  prompt_tokens: prompt,
  completion_tokens: completionTokens,
  total_tokens: prompt + completionTokens,
  prompt_tokens_details: { cached_tokens: cached },
});

function chunk(
  delta: ChunkChoice['delta'],
  finish: string | null = null,
  extra: Partial<ChatCompletionChunk> = {},
) {
  const c: ChatCompletionChunk = {
    id: 'chatcmpl-1',
    object: 'chat.completion.chunk',
    created: 1,
    model: 'gpt-4o-mini',
    choices: [{ index: 0, delta, finish_reason: finish as never }],
    ...extra,
  };
  return c;
}

const usageChunk = (u: Usage): ChatCompletionChunk => ({
  id: 'chatcmpl-1',
  object: 'chat.completion.chunk',
  created: 1,
  model: 'gpt-4o-mini',
  choices: [],
  usage: u,
});

/** Runs chunks through a translator; returns every event in order. */
function translate(chunks: ChatCompletionChunk[], finalUsage: Usage | undefined): MessageStreamEvent[] {
  const t = new AnthropicInboundStreamEncoder({ model: 'claude-x', id: 'msg_test' });
  const events: MessageStreamEvent[] = [];
  for (const c of chunks) events.push(...t.push(c));
  events.push(...t.finish(finalUsage));
  return events;
}

const messageStart = (inputTokens = 0): MessageStreamEvent => ({
  type: 'message_start',
  message: {
    id: 'msg_test',
    type: 'message',
    role: 'assistant',
    content: [],
    model: 'claude-x',
    stop_reason: null,
    stop_sequence: null,
    usage: {
      input_tokens: inputTokens,
      output_tokens: 0,
      cache_creation_input_tokens: 0,
      cache_read_input_tokens: 0,
    },
  },
});

describe('Anthropic request → canonical request', () => {
  test('text, system string and sampling parameters', () => {
    const { chat, anthropicOnly } = fromAnthropicRequest(
      request({
        system: 'Be brief.',
        temperature: 0.5,
        top_p: 0.9,
        top_k: 40,
        stop_sequences: ['END'],
        metadata: { user_id: 'user-7' },
        thinking: { type: 'enabled', budget_tokens: 2048 },
      }),
    );
    assert.deepEqual(chat, {
      model: 'claude-x',
      messages: [
        { role: 'system', content: 'Be brief.' },
        { role: 'user', content: 'Hello' },
      ],
      max_tokens: 100,
      temperature: 0.5,
      top_p: 0.9,
      stop: ['END'],
      user: 'user-7',
    });
    assert.deepEqual(anthropicOnly, { top_k: 40, thinking: { type: 'enabled', budget_tokens: 2048 } });
  });

  test('system as text blocks and a multi-turn conversation', () => {
    const { chat } = fromAnthropicRequest(
      request({
        system: [
          { type: 'text', text: 'Rule one.' },
          { type: 'text', text: 'Rule two.', cache_control: { type: 'ephemeral' } },
        ],
        messages: [
          { role: 'user', content: [{ type: 'text', text: 'Hi' }] },
          { role: 'assistant', content: [{ type: 'text', text: 'Hello!' }] },
          {
            role: 'user',
            content: [
              { type: 'text', text: 'Part A' },
              { type: 'text', text: 'Part B' },
            ],
          },
        ],
        stream: true,
      }),
    );
    assert.deepEqual(chat.messages, [
      {
        role: 'system',
        content: [
          { type: 'text', text: 'Rule one.' },
          { type: 'text', text: 'Rule two.' },
        ],
      },
      { role: 'user', content: 'Hi' },
      { role: 'assistant', content: 'Hello!' },
      {
        role: 'user',
        content: [
          { type: 'text', text: 'Part A' },
          { type: 'text', text: 'Part B' },
        ],
      },
    ]);
    assert.equal(chat.stream, true);
  });

  test('images: base64 becomes a data: URL, url sources stay URLs', () => {
    const { chat } = fromAnthropicRequest(
      request({
        messages: [
          {
            role: 'user',
            content: [
              { type: 'image', source: { type: 'base64', media_type: 'image/png', data: PNG } },
              { type: 'image', source: { type: 'url', url: 'https://example.com/cat.jpg' } },
              { type: 'text', text: 'What is this?' },
            ],
          },
        ],
      }),
    );
    assert.deepEqual(chat.messages, [
      {
        role: 'user',
        content: [
          { type: 'image_url', image_url: { url: `data:image/png;base64,${PNG}` } },
          { type: 'image_url', image_url: { url: 'https://example.com/cat.jpg' } },
          { type: 'text', text: 'What is this?' },
        ],
      },
    ]);
  });

  test('tools, tool_use and tool_result (with is_error) round trip into tool calls and tool messages', () => {
    const { chat } = fromAnthropicRequest(
      request({
        tools: [
          {
            name: 'get_weather',
            description: 'Weather for a city',
            input_schema: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
          },
        ],
        tool_choice: { type: 'any', disable_parallel_tool_use: true },
        messages: [
          { role: 'user', content: 'Weather in Paris and Rome?' },
          {
            role: 'assistant',
            content: [
              { type: 'thinking', thinking: 'Let me call tools.', signature: 'sig' },
              { type: 'text', text: 'Checking.' },
              { type: 'tool_use', id: 'toolu_1', name: 'get_weather', input: { city: 'Paris' } },
              { type: 'tool_use', id: 'toolu_2', name: 'get_weather', input: { city: 'Rome' } },
            ],
          },
          {
            role: 'user',
            content: [
              { type: 'tool_result', tool_use_id: 'toolu_1', content: '18C' },
              {
                type: 'tool_result',
                tool_use_id: 'toolu_2',
                is_error: true,
                content: [{ type: 'text', text: 'service down' }],
              },
              { type: 'text', text: 'Summarise.' },
            ],
          },
        ],
      }),
    );
    assert.deepEqual(chat.tools, [
      {
        type: 'function',
        function: {
          name: 'get_weather',
          description: 'Weather for a city',
          parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
        },
      },
    ]);
    assert.equal(chat.tool_choice, 'required');
    assert.equal(chat['parallel_tool_calls'], false);
    assert.deepEqual(chat.messages.slice(1), [
      {
        role: 'assistant',
        content: 'Checking.',
        tool_calls: [
          {
            id: 'toolu_1',
            type: 'function',
            function: { name: 'get_weather', arguments: '{"city":"Paris"}' },
          },
          {
            id: 'toolu_2',
            type: 'function',
            function: { name: 'get_weather', arguments: '{"city":"Rome"}' },
          },
        ],
      },
      { role: 'tool', tool_call_id: 'toolu_1', content: '18C' },
      { role: 'tool', tool_call_id: 'toolu_2', content: 'Error: service down' },
      { role: 'user', content: 'Summarise.' },
    ]);
  });

  test('images in a tool_result go to the user turn that follows the tool message', () => {
    const { chat } = fromAnthropicRequest(
      request({
        messages: [
          { role: 'assistant', content: [{ type: 'tool_use', id: 't1', name: 'screenshot', input: {} }] },
          {
            role: 'user',
            content: [
              {
                type: 'tool_result',
                tool_use_id: 't1',
                content: [
                  { type: 'text', text: 'captured' },
                  { type: 'image', source: { type: 'base64', media_type: 'image/png', data: PNG } },
                ],
              },
            ],
          },
        ],
      }),
    );
    assert.deepEqual(chat.messages.slice(1), [
      { role: 'tool', tool_call_id: 't1', content: 'captured' },
      { role: 'user', content: [{ type: 'image_url', image_url: { url: `data:image/png;base64,${PNG}` } }] },
    ]);
  });

  test('tool_choice variants', () => {
    const tools = [{ name: 't', input_schema: { type: 'object' as const } }];
    const choice = (tool_choice: MessagesRequest['tool_choice']) =>
      fromAnthropicRequest(request({ tools, ...(tool_choice ? { tool_choice } : {}) })).chat;
    assert.equal(choice({ type: 'auto' }).tool_choice, 'auto');
    assert.equal(choice({ type: 'none' }).tool_choice, 'none');
    assert.deepEqual(choice({ type: 'tool', name: 't' }).tool_choice, {
      type: 'function',
      function: { name: 't' },
    });
    assert.equal(choice({ type: 'auto' })['parallel_tool_calls'], undefined);
    // Without tools there is nothing to choose: OpenAI refuses tool_choice alone.
    assert.equal(
      fromAnthropicRequest(request({ tool_choice: { type: 'auto' } })).chat.tool_choice,
      undefined,
    );
  });

  test('what a non-Anthropic target cannot take is refused, naming the field', () => {
    assert.throws(
      () =>
        fromAnthropicRequest(
          request({
            messages: [
              {
                role: 'user',
                content: [{ type: 'document', source: { type: 'text', data: 'x' } } as never],
              },
            ],
          }),
        ),
      (e: unknown) => GatewayError.is(e) && e.status === 400 && e.param === 'messages[0].content[0].type',
    );
    assert.throws(
      () =>
        fromAnthropicRequest(
          request({ tools: [{ type: 'web_search_20250305', name: 'web_search' } as never] }),
        ),
      (e: unknown) => GatewayError.is(e) && e.param === 'tools[0].type',
    );
  });

  test('count_tokens prompt keeps system, messages and tools', () => {
    const prompt = fromAnthropicPrompt(
      validateCountTokensRequest({
        model: 'claude-x',
        system: 'S',
        messages: [{ role: 'user', content: 'Q' }],
        tools: [{ name: 't', input_schema: { type: 'object' } }],
      }),
    );
    assert.equal(prompt.messages.length, 2);
    assert.equal(prompt.tools?.length, 1);
    assert.equal(prompt.max_tokens, undefined);
  });
});

describe('Anthropic request validation names the field', () => {
  const cases: Array<[string, Record<string, unknown>, string]> = [
    ['missing max_tokens', { max_tokens: undefined }, 'max_tokens'],
    ['zero max_tokens', { max_tokens: 0 }, 'max_tokens'],
    ['no messages', { messages: [] }, 'messages'],
    ['bad role', { messages: [{ role: 'system', content: 'x' }] }, 'messages[0].role'],
    [
      'image without data',
      {
        messages: [
          { role: 'user', content: [{ type: 'image', source: { type: 'base64', media_type: 'image/png' } }] },
        ],
      },
      'messages[0].content[0].source.data',
    ],
    [
      'tool_use in a user turn',
      { messages: [{ role: 'user', content: [{ type: 'tool_use', id: 'a', name: 'b', input: {} }] }] },
      'messages[0].content[0].type',
    ],
    ['temperature above 1', { temperature: 1.5 }, 'temperature'],
    ['stop_sequences not strings', { stop_sequences: [1] }, 'stop_sequences'],
    ['tool without schema', { tools: [{ name: 't' }] }, 'tools[0].input_schema'],
    ['tool_choice of a bad type', { tool_choice: { type: 'required' } }, 'tool_choice.type'],
    ['per-request upstream', { base_url: 'http://evil' }, 'base_url'],
  ];
  for (const [name, patch, param] of cases) {
    test(name, () => {
      const body: Record<string, unknown> = {
        model: 'm',
        max_tokens: 10,
        messages: [{ role: 'user', content: 'x' }],
        ...patch,
      };
      for (const [k, v] of Object.entries(body)) if (v === undefined) delete body[k];
      assert.throws(
        () => validateMessagesRequest(body),
        (e: unknown) =>
          GatewayError.is(e) &&
          e.code === 'invalid_request' &&
          e.param === param &&
          e.message.startsWith(param),
      );
    });
  }
});

describe('canonical completion → Anthropic Message', () => {
  test('text answer with usage (cache reads apart from input tokens)', () => {
    const message = toAnthropicMessage(
      completion({ role: 'assistant', content: 'Hi there' }, 'stop', usage(30, 5, 10)),
      {
        model: 'claude-x',
        id: 'msg_1',
      },
    );
    assert.deepEqual(message, {
      id: 'msg_1',
      type: 'message',
      role: 'assistant',
      content: [{ type: 'text', text: 'Hi there' }],
      model: 'claude-x',
      stop_reason: 'end_turn',
      stop_sequence: null,
      usage: {
        input_tokens: 20,
        output_tokens: 5,
        cache_creation_input_tokens: 0,
        cache_read_input_tokens: 10,
      },
    });
  });

  test('tool calls become tool_use blocks with parsed input', () => {
    const message = toAnthropicMessage(
      completion(
        {
          role: 'assistant',
          content: 'Let me check.',
          tool_calls: [
            {
              id: 'call_1',
              type: 'function',
              function: { name: 'get_weather', arguments: '{"city":"Paris"}' },
            },
            { id: 'call_2', type: 'function', function: { name: 'now', arguments: '' } },
          ],
        },
        'tool_calls',
      ),
      { model: 'claude-x' },
    );
    assert.match(message.id, /^msg_[A-Za-z0-9_-]{24}$/);
    assert.deepEqual(message.content, [
      { type: 'text', text: 'Let me check.' },
      { type: 'tool_use', id: 'call_1', name: 'get_weather', input: { city: 'Paris' } },
      { type: 'tool_use', id: 'call_2', name: 'now', input: {} },
    ]);
    assert.equal(message.stop_reason, 'tool_use');
    assert.deepEqual(message.usage, {
      input_tokens: 0,
      output_tokens: 0,
      cache_creation_input_tokens: 0,
      cache_read_input_tokens: 0,
    });
  });

  test('tool arguments that are not a JSON object fail the answer instead of inventing input', () => {
    for (const args of ['{"city":', '[1,2]', '"text"']) {
      assert.throws(
        () =>
          toAnthropicMessage(
            completion(
              {
                role: 'assistant',
                content: null,
                tool_calls: [{ id: 'c', type: 'function', function: { name: 'f', arguments: args } }],
              },
              'tool_calls',
            ),
            { model: 'm' },
          ),
        (e: unknown) => GatewayError.is(e) && e.code === 'upstream_bad_response' && e.retryable,
      );
    }
  });

  test('stop reasons', () => {
    const reason = (finish: string, extra: Record<string, unknown> = {}, stops?: string[]) => {
      const c = completion({ role: 'assistant', content: 'x' }, finish);
      Object.assign(c.choices[0]!, extra);
      const m = toAnthropicMessage(c, { model: 'm', stopSequences: stops });
      return [m.stop_reason, m.stop_sequence];
    };
    assert.deepEqual(reason('stop'), ['end_turn', null]);
    assert.deepEqual(reason('length'), ['max_tokens', null]);
    assert.deepEqual(reason('tool_calls'), ['tool_use', null]);
    assert.deepEqual(reason('content_filter'), ['refusal', null]);
    // vLLM-style servers say which stop string matched.
    assert.deepEqual(reason('stop', { stop_reason: 'END' }, ['END']), ['stop_sequence', 'END']);
    assert.deepEqual(reason('stop', { stop_reason: 'OTHER' }, ['END']), ['end_turn', null]);
  });
});

describe('canonical chunks → Anthropic stream events', () => {
  test('text only', () => {
    const events = translate(
      [
        chunk({ role: 'assistant', content: '' }),
        chunk({ content: 'Hello' }),
        chunk({ content: ' world' }),
        chunk({}, 'stop'),
        usageChunk(usage(12, 2)),
      ],
      usage(12, 2),
    );
    assert.deepEqual(events, [
      messageStart(),
      { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } },
      { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: 'Hello' } },
      { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: ' world' } },
      { type: 'content_block_stop', index: 0 },
      {
        type: 'message_delta',
        delta: { stop_reason: 'end_turn', stop_sequence: null },
        usage: {
          output_tokens: 2,
          input_tokens: 12,
          cache_creation_input_tokens: 0,
          cache_read_input_tokens: 0,
        },
      },
      { type: 'message_stop' },
    ]);
  });

  test('tool call only', () => {
    const events = translate(
      [
        chunk({
          role: 'assistant',
          content: null,
          tool_calls: [
            { index: 0, id: 'call_9', type: 'function', function: { name: 'get_weather', arguments: '' } },
          ],
        }),
        chunk({ tool_calls: [{ index: 0, function: { arguments: '{"city":' } }] }),
        chunk({ tool_calls: [{ index: 0, function: { arguments: '"Paris"}' } }] }),
        chunk({}, 'tool_calls'),
      ],
      undefined,
    );
    assert.deepEqual(events, [
      messageStart(),
      {
        type: 'content_block_start',
        index: 0,
        content_block: { type: 'tool_use', id: 'call_9', name: 'get_weather', input: {} },
      },
      {
        type: 'content_block_delta',
        index: 0,
        delta: { type: 'input_json_delta', partial_json: '{"city":' },
      },
      {
        type: 'content_block_delta',
        index: 0,
        delta: { type: 'input_json_delta', partial_json: '"Paris"}' },
      },
      { type: 'content_block_stop', index: 0 },
      {
        type: 'message_delta',
        delta: { stop_reason: 'tool_use', stop_sequence: null },
        usage: { output_tokens: 0 },
      },
      { type: 'message_stop' },
    ]);
  });

  test('text then two tool calls: one block each, indexes in order', () => {
    const events = translate(
      [
        chunk({ role: 'assistant', content: 'Checking' }),
        chunk({
          tool_calls: [{ index: 0, id: 'a', type: 'function', function: { name: 'f', arguments: '{}' } }],
        }),
        chunk({
          tool_calls: [{ index: 1, id: 'b', type: 'function', function: { name: 'g', arguments: '{"x"' } }],
        }),
        chunk({ tool_calls: [{ index: 1, function: { arguments: ':1}' } }] }, 'tool_calls'),
        usageChunk(usage(40, 7, 8)),
      ],
      usage(40, 7, 8),
    );
    assert.deepEqual(
      events.map((e) => [e.type, 'index' in e ? e.index : null]),
      [
        ['message_start', null],
        ['content_block_start', 0],
        ['content_block_delta', 0],
        ['content_block_stop', 0],
        ['content_block_start', 1],
        ['content_block_delta', 1],
        ['content_block_stop', 1],
        ['content_block_start', 2],
        ['content_block_delta', 2],
        ['content_block_delta', 2],
        ['content_block_stop', 2],
        ['message_delta', null],
        ['message_stop', null],
      ],
    );
    assert.deepEqual(events[4], {
      type: 'content_block_start',
      index: 1,
      content_block: { type: 'tool_use', id: 'a', name: 'f', input: {} },
    });
    assert.deepEqual(events.at(-2), {
      type: 'message_delta',
      delta: { stop_reason: 'tool_use', stop_sequence: null },
      usage: {
        output_tokens: 7,
        input_tokens: 32,
        cache_creation_input_tokens: 0,
        cache_read_input_tokens: 8,
      },
    });
  });

  test('usage already in the first chunk goes into message_start, not again at the end', () => {
    const t = new AnthropicInboundStreamEncoder({ model: 'claude-x', id: 'msg_test' });
    const first = t.push(chunk({ content: 'x' }, null, { usage: usage(9, 0) }));
    assert.deepEqual(first[0], messageStart(9));
    const last = t.finish(usage(9, 1));
    assert.deepEqual(last.at(-2), {
      type: 'message_delta',
      delta: { stop_reason: 'end_turn', stop_sequence: null },
      usage: { output_tokens: 1 },
    });
  });

  test('an error mid-stream is one error event in Anthropic shape', () => {
    const t = new AnthropicInboundStreamEncoder({ model: 'claude-x', id: 'msg_test' });
    const events = [
      ...t.push(chunk({ role: 'assistant', content: 'Hel' })),
      ...t.error(new GatewayError('upstream_overloaded', 'Overloaded')),
    ];
    assert.deepEqual(events, [
      messageStart(),
      { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } },
      { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: 'Hel' } },
      { type: 'error', error: { type: 'overloaded_error', message: 'Overloaded' } },
    ]);
    assert.equal(
      encodeEvent(events[3]!),
      'event: error\ndata: {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}\n\n',
    );
  });
});

describe('GatewayError → Anthropic error', () => {
  test('type and status per code', () => {
    const shape = (code: ConstructorParameters<typeof GatewayError>[0], status?: number) => {
      const r = toAnthropicError(new GatewayError(code, 'm', status ? { status } : {}), 'req-1');
      return [r.status, r.body.error.type];
    };
    assert.deepEqual(shape('invalid_request'), [400, 'invalid_request_error']);
    assert.deepEqual(shape('invalid_api_key'), [401, 'authentication_error']);
    assert.deepEqual(shape('model_not_allowed'), [403, 'permission_error']);
    assert.deepEqual(shape('model_not_found'), [404, 'not_found_error']);
    assert.deepEqual(shape('request_too_large'), [413, 'request_too_large']);
    assert.deepEqual(shape('upstream_rate_limited'), [429, 'rate_limit_error']);
    assert.deepEqual(shape('upstream_error'), [502, 'api_error']);
    assert.deepEqual(shape('upstream_auth_error'), [502, 'api_error']);
    assert.deepEqual(shape('upstream_timeout'), [504, 'timeout_error']);
    assert.deepEqual(shape('upstream_overloaded'), [529, 'overloaded_error']);
    assert.deepEqual(shape('internal_error'), [500, 'api_error']);
    assert.deepEqual(shape('upstream_client_error', 404), [404, 'not_found_error']);
    assert.deepEqual(shape('upstream_client_error', 422), [422, 'invalid_request_error']);
    assert.deepEqual(toAnthropicError(new GatewayError('invalid_request', 'bad'), 'req-1').body, {
      type: 'error',
      error: { type: 'invalid_request_error', message: 'bad' },
      request_id: 'req-1',
    });
  });
});
