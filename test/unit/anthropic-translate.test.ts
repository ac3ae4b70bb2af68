import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { GatewayError } from '../../src/core/errors.ts';
import type { ChatRequest } from '../../src/core/types.ts';
import { mapAnthropicError, mapAnthropicStreamError } from '../../src/providers/anthropic/anthropic-error.ts';
import { toAnthropicRequest } from '../../src/providers/anthropic/anthropic-request.ts';
import { fromAnthropicMessage } from '../../src/providers/anthropic/anthropic-response.ts';
import type { AnthropicMessage } from '../../src/providers/anthropic/anthropic-wire.ts';

const options = { defaultMaxTokens: 4096 };
const translate = (request: Partial<ChatRequest>) =>
  toAnthropicRequest({ model: 'claude-x', messages: [], ...request } as ChatRequest, options);

function rejects(request: Partial<ChatRequest>, param: string): void {
  assert.throws(
    () => translate(request),
    (error: unknown) => GatewayError.is(error) && error.code === 'invalid_request' && error.param === param,
  );
}

describe('canonical request → Anthropic Messages request', () => {
  test('system and developer messages become `system`; max_tokens defaults', () => {
    const out = translate({
      messages: [
        { role: 'system', content: 'Be brief.' },
        { role: 'user', content: 'hi' },
      ],
    });
    assert.deepEqual(out, {
      model: 'claude-x',
      system: 'Be brief.',
      messages: [{ role: 'user', content: 'hi' }],
      max_tokens: 4096,
    });
    const two = translate({
      messages: [
        { role: 'system', content: 'A' },
        { role: 'developer', content: [{ type: 'text', text: 'B' }] },
        { role: 'user', content: 'hi' },
      ],
    });
    assert.deepEqual(two.system, [
      { type: 'text', text: 'A' },
      { type: 'text', text: 'B' },
    ]);
  });

  test('multi-turn keeps order and merges consecutive same-role turns', () => {
    const out = translate({
      messages: [
        { role: 'user', content: 'one' },
        { role: 'user', content: [{ type: 'text', text: 'two' }] },
        { role: 'assistant', content: 'three' },
        { role: 'user', content: 'four' },
      ],
    });
    assert.deepEqual(out.messages, [
      {
        role: 'user',
        content: [
          { type: 'text', text: 'one' },
          { type: 'text', text: 'two' },
        ],
      },
      { role: 'assistant', content: 'three' },
      { role: 'user', content: 'four' },
    ]);
  });

  test('images: data: URL → base64 source, http(s) URL → url source, anything else refused', () => {
    const out = translate({
      messages: [
        {
          role: 'user',
          content: [
            { type: 'text', text: 'what is this?' },
            { type: 'image_url', image_url: { url: 'data:image/png;base64,iVBORw0KGgo=' } },
            { type: 'image_url', image_url: { url: 'https://example.com/cat.jpg', detail: 'high' } },
          ],
        },
      ],
    });
    assert.deepEqual(out.messages[0]?.content, [
      { type: 'text', text: 'what is this?' },
      { type: 'image', source: { type: 'base64', media_type: 'image/png', data: 'iVBORw0KGgo=' } },
      { type: 'image', source: { type: 'url', url: 'https://example.com/cat.jpg' } },
    ]);
    rejects(
      { messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'ftp://x/y.png' } }] }] },
      'messages[0].content[0].image_url.url',
    );
    rejects(
      { messages: [{ role: 'user', content: [{ type: 'input_audio', input_audio: {} }] }] },
      'messages[0].content[0]',
    );
  });

  test('tools and every tool_choice variant', () => {
    const tools: ChatRequest['tools'] = [
      {
        type: 'function',
        function: {
          name: 'get_weather',
          description: 'Weather for a city',
          parameters: {
            type: 'object',
            properties: { location: { type: 'string' } },
            required: ['location'],
          },
        },
      },
      { type: 'function', function: { name: 'no_params' } },
    ];
    const base = { messages: [{ role: 'user' as const, content: 'weather?' }], tools };
    const out = translate(base);
    assert.deepEqual(out.tools, [
      {
        name: 'get_weather',
        description: 'Weather for a city',
        input_schema: {
          type: 'object',
          properties: { location: { type: 'string' } },
          required: ['location'],
        },
      },
      { name: 'no_params', input_schema: { type: 'object', properties: {} } },
    ]);
    assert.equal(out.tool_choice, undefined);
    assert.deepEqual(translate({ ...base, tool_choice: 'auto' }).tool_choice, { type: 'auto' });
    assert.deepEqual(translate({ ...base, tool_choice: 'none' }).tool_choice, { type: 'none' });
    assert.deepEqual(translate({ ...base, tool_choice: 'required' }).tool_choice, { type: 'any' });
    assert.deepEqual(
      translate({ ...base, tool_choice: { type: 'function', function: { name: 'no_params' } } }).tool_choice,
      { type: 'tool', name: 'no_params' },
    );
    assert.deepEqual(translate({ ...base, parallel_tool_calls: false }).tool_choice, {
      type: 'auto',
      disable_parallel_tool_use: true,
    });
    assert.deepEqual(
      translate({ ...base, tool_choice: 'required', parallel_tool_calls: false }).tool_choice,
      {
        type: 'any',
        disable_parallel_tool_use: true,
      },
    );
    // No tools: a tool_choice has nothing to choose from and is not sent.
    assert.equal(translate({ messages: base.messages, tool_choice: 'auto' }).tool_choice, undefined);
    rejects({ ...base, tool_choice: 'sometimes' }, 'tool_choice');
  });

  test('tool round trip: assistant tool_calls → tool_use, tool messages → tool_result in one user turn', () => {
    const out = translate({
      messages: [
        { role: 'user', content: 'weather in Paris and Rome?' },
        {
          role: 'assistant',
          content: null,
          tool_calls: [
            {
              id: 'toolu_1',
              type: 'function',
              function: { name: 'get_weather', arguments: '{"location":"Paris"}' },
            },
            {
              id: 'toolu_2',
              type: 'function',
              function: { name: 'get_weather', arguments: '{"location":"Rome"}' },
            },
          ],
        },
        { role: 'tool', tool_call_id: 'toolu_1', content: '18C' },
        { role: 'tool', tool_call_id: 'toolu_2', content: [{ type: 'text', text: '24C' }] },
        { role: 'user', content: 'thanks' },
      ],
    });
    assert.deepEqual(out.messages, [
      { role: 'user', content: 'weather in Paris and Rome?' },
      {
        role: 'assistant',
        content: [
          { type: 'tool_use', id: 'toolu_1', name: 'get_weather', input: { location: 'Paris' } },
          { type: 'tool_use', id: 'toolu_2', name: 'get_weather', input: { location: 'Rome' } },
        ],
      },
      {
        role: 'user',
        content: [
          { type: 'tool_result', tool_use_id: 'toolu_1', content: '18C' },
          { type: 'tool_result', tool_use_id: 'toolu_2', content: [{ type: 'text', text: '24C' }] },
          { type: 'text', text: 'thanks' },
        ],
      },
    ]);
    rejects(
      {
        messages: [
          {
            role: 'assistant',
            tool_calls: [{ id: 'a', type: 'function', function: { name: 'f', arguments: '[1,2' } }],
          },
        ],
      },
      'messages[0].tool_calls[0].function.arguments',
    );
    rejects({ messages: [{ role: 'tool', content: 'x' }] }, 'messages[0].tool_call_id');
  });

  test('stop, sampling, user, max_completion_tokens; unknown canonical fields are dropped', () => {
    const out = translate({
      messages: [{ role: 'user', content: 'hi' }],
      stop: 'END',
      temperature: 0.2,
      top_p: 0.9,
      user: 'user-42',
      max_tokens: 100,
      max_completion_tokens: 50,
      presence_penalty: 1,
      frequency_penalty: 1,
      logprobs: true,
      seed: 7,
      response_format: { type: 'json_object' },
      stream_options: { include_usage: true },
      n: 1,
    });
    assert.deepEqual(out, {
      model: 'claude-x',
      messages: [{ role: 'user', content: 'hi' }],
      max_tokens: 50,
      stop_sequences: ['END'],
      temperature: 0.2,
      top_p: 0.9,
      metadata: { user_id: 'user-42' },
    });
    assert.deepEqual(
      translate({ messages: [{ role: 'user', content: 'x' }], stop: ['a', 'b'] }).stop_sequences,
      ['a', 'b'],
    );
    assert.equal(translate({ messages: [{ role: 'user', content: 'x' }], max_tokens: 7 }).max_tokens, 7);
    rejects({ messages: [{ role: 'user', content: 'x' }], n: 2 }, 'n');
    rejects({ messages: [{ role: 'system', content: 'only a system prompt' }] }, 'messages');
  });

  test('reasoning_effort and a native thinking config map to extended thinking', () => {
    const user = [{ role: 'user' as const, content: 'think' }];
    const low = translate({ messages: user, reasoning_effort: 'low' });
    assert.deepEqual(low.thinking, { type: 'enabled', budget_tokens: 2048 });
    assert.equal(low.max_tokens, 2048 + 4096, 'the default answer room comes on top of the budget');
    const capped = translate({ messages: user, reasoning_effort: 'high', max_tokens: 5000 });
    assert.deepEqual(capped.thinking, { type: 'enabled', budget_tokens: 4999 });
    assert.equal(capped.max_tokens, 5000);
    const native = translate({ messages: user, thinking: { type: 'enabled', budget_tokens: 3000 } });
    assert.deepEqual(native.thinking, { type: 'enabled', budget_tokens: 3000 });
    assert.equal(translate({ messages: user, reasoning_effort: 'none' }).thinking, undefined);
    rejects({ messages: user, reasoning_effort: 'high', max_tokens: 500 }, 'max_tokens');
    rejects({ messages: user, reasoning_effort: 'extreme' }, 'reasoning_effort');
  });

  test('thinking blocks given back on an assistant turn are sent unchanged', () => {
    const thinking = { type: 'thinking', thinking: 'hmm', signature: 'sig' };
    const out = translate({
      messages: [
        { role: 'user', content: 'q' },
        {
          role: 'assistant',
          content: '',
          thinking_blocks: [thinking],
          tool_calls: [{ id: 't1', type: 'function', function: { name: 'f', arguments: '' } }],
        },
        { role: 'tool', tool_call_id: 't1', content: 'r' },
      ],
    });
    assert.deepEqual(out.messages[1]?.content, [
      thinking,
      { type: 'tool_use', id: 't1', name: 'f', input: {} },
    ]);
  });
});

function message(overrides: Partial<AnthropicMessage>): AnthropicMessage {
  return {
    id: 'msg_1',
    type: 'message',
    role: 'assistant',
    model: 'claude-x',
    content: [],
    stop_reason: 'end_turn',
    stop_sequence: null,
    usage: { input_tokens: 10, output_tokens: 5 },
    ...overrides,
  };
}

describe('Anthropic Messages response → canonical completion', () => {
  test('text', () => {
    const out = fromAnthropicMessage(
      message({
        content: [
          { type: 'text', text: 'Hello' },
          { type: 'text', text: ', world' },
        ],
      }),
      1700000000,
    );
    assert.deepEqual(out, {
      id: 'msg_1',
      object: 'chat.completion',
      created: 1700000000,
      model: 'claude-x',
      choices: [
        {
          index: 0,
          message: { role: 'assistant', content: 'Hello, world' },
          finish_reason: 'stop',
          logprobs: null,
        },
      ],
      usage: {
        prompt_tokens: 10,
        completion_tokens: 5,
        total_tokens: 15,
        prompt_tokens_details: { cached_tokens: 0 },
        cache_creation_input_tokens: 0,
      },
    });
  });

  test('tool_use → tool_calls with the input as a JSON string', () => {
    const out = fromAnthropicMessage(
      message({
        stop_reason: 'tool_use',
        content: [{ type: 'tool_use', id: 'toolu_9', name: 'get_weather', input: { location: 'Paris' } }],
      }),
    );
    const choice = out.choices[0]!;
    assert.equal(choice.finish_reason, 'tool_calls');
    assert.equal(choice.message.content, null);
    assert.deepEqual(choice.message.tool_calls, [
      {
        id: 'toolu_9',
        type: 'function',
        function: { name: 'get_weather', arguments: '{"location":"Paris"}' },
      },
    ]);
  });

  test('thinking → reasoning_content plus the blocks as sent', () => {
    const blocks = [
      { type: 'thinking' as const, thinking: 'Let me see. ', signature: 'sig1' },
      { type: 'redacted_thinking' as const, data: 'opaque' },
    ];
    const out = fromAnthropicMessage(message({ content: [...blocks, { type: 'text', text: '42' }] }));
    const m = out.choices[0]!.message;
    assert.equal(m.content, '42');
    assert.equal(m['reasoning_content'], 'Let me see. ');
    assert.deepEqual(m['thinking_blocks'], blocks);
  });

  test('every stop reason', () => {
    const cases: Array<[AnthropicMessage['stop_reason'], string]> = [
      ['end_turn', 'stop'],
      ['stop_sequence', 'stop'],
      ['max_tokens', 'length'],
      ['model_context_window_exceeded', 'length'],
      ['tool_use', 'tool_calls'],
      ['refusal', 'content_filter'],
      ['pause_turn', 'stop'],
    ];
    for (const [reason, finish] of cases) {
      assert.equal(
        fromAnthropicMessage(message({ stop_reason: reason })).choices[0]?.finish_reason,
        finish,
        String(reason),
      );
    }
  });

  test('usage: cache reads and writes count as prompt tokens; reads are cached_tokens; writes kept apart', () => {
    const out = fromAnthropicMessage(
      message({
        usage: {
          input_tokens: 12,
          output_tokens: 30,
          cache_read_input_tokens: 1000,
          cache_creation_input_tokens: 200,
        },
      }),
    );
    assert.deepEqual(out.usage, {
      prompt_tokens: 1212,
      completion_tokens: 30,
      total_tokens: 1242,
      prompt_tokens_details: { cached_tokens: 1000 },
      cache_creation_input_tokens: 200,
    });
  });

  test('a body that is not a message is a bad upstream response', () => {
    assert.throws(
      () => fromAnthropicMessage({ type: 'error' } as unknown as AnthropicMessage),
      (e: unknown) => GatewayError.is(e) && e.code === 'upstream_bad_response',
    );
  });
});

describe('Anthropic errors → GatewayError', () => {
  const body = (type: string, message: string) => JSON.stringify({ type: 'error', error: { type, message } });
  const redact = (text: string) => text.split('sk-ant-secret-key').join('[redacted]');
  const cases: Array<[number, string, string, string, number, boolean]> = [
    [400, 'invalid_request_error', 'max_tokens: Field required', 'upstream_client_error', 400, false],
    [
      400,
      'invalid_request_error',
      'prompt is too long: 208310 tokens > 200000 maximum',
      'context_length_exceeded',
      400,
      false,
    ],
    [401, 'authentication_error', 'invalid x-api-key sk-ant-secret-key', 'upstream_auth_error', 502, false],
    [403, 'permission_error', 'no access', 'upstream_auth_error', 502, false],
    [404, 'not_found_error', 'model: claude-nope', 'upstream_client_error', 404, false],
    [
      413,
      'request_too_large',
      'Request exceeds the maximum allowed number of bytes.',
      'request_too_large',
      413,
      false,
    ],
    [429, 'rate_limit_error', 'slow down', 'upstream_rate_limited', 429, true],
    [500, 'api_error', 'Internal server error', 'upstream_error', 502, true],
    [529, 'overloaded_error', 'Overloaded', 'upstream_overloaded', 503, true],
  ];
  for (const [status, type, text, code, clientStatus, retryable] of cases) {
    test(`${status} ${type} → ${code}`, () => {
      const error = mapAnthropicError(status, { 'retry-after': '7' }, body(type, text), redact);
      assert.equal(error.code, code);
      assert.equal(error.status, clientStatus);
      assert.equal(error.retryable, retryable);
      assert.equal(error.upstreamStatus, status);
      assert.ok(!error.message.includes('sk-ant-secret-key'));
      if (status === 429 || status === 529) assert.equal(error.retryAfterMs, 7000);
    });
  }

  test('a non-JSON error page is not relayed', () => {
    const error = mapAnthropicError(502, {}, '<html>bad gateway</html>', redact);
    assert.equal(error.code, 'upstream_error');
    assert.ok(!error.message.includes('html'));
  });

  test('stream error events by type', () => {
    assert.equal(
      mapAnthropicStreamError(body('overloaded_error', 'Overloaded'), redact).code,
      'upstream_overloaded',
    );
    assert.equal(mapAnthropicStreamError(body('overloaded_error', 'Overloaded'), redact).retryable, true);
    assert.equal(mapAnthropicStreamError(body('api_error', 'boom'), redact).code, 'upstream_error');
    assert.equal(
      mapAnthropicStreamError(body('rate_limit_error', 'x'), redact).code,
      'upstream_rate_limited',
    );
    assert.equal(mapAnthropicStreamError('not json', redact).code, 'upstream_error');
  });
});
