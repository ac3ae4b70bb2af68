import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { GatewayError } from '../../src/core/errors.ts';
import type { ChatRequest } from '../../src/core/types.ts';
import { mapGeminiError } from '../../src/providers/gemini/gemini-error.ts';
import { cleanSchema, toGeminiRequest } from '../../src/providers/gemini/gemini-request.ts';
import { fromGeminiResponse, toUsage } from '../../src/providers/gemini/gemini-response.ts';

const identity = (text: string) => text;

function request(fields: Partial<ChatRequest>): ChatRequest {
  return { model: 'gemini-2.5-flash', messages: [{ role: 'user', content: 'hi' }], ...fields };
}

describe('canonical → generateContent request', () => {
  test('system and developer messages become systemInstruction; roles map to user/model', () => {
    const out = toGeminiRequest(
      request({
        messages: [
          { role: 'system', content: 'Be brief.' },
          { role: 'developer', content: [{ type: 'text', text: 'Answer in French.' }] },
          { role: 'user', content: 'Hello' },
          { role: 'assistant', content: 'Bonjour' },
          { role: 'user', content: 'How are you?' },
        ],
      }),
    );
    assert.deepEqual(out.systemInstruction, {
      parts: [{ text: 'Be brief.' }, { text: 'Answer in French.' }],
    });
    assert.deepEqual(out.contents, [
      { role: 'user', parts: [{ text: 'Hello' }] },
      { role: 'model', parts: [{ text: 'Bonjour' }] },
      { role: 'user', parts: [{ text: 'How are you?' }] },
    ]);
    assert.equal(out.generationConfig, undefined);
  });

  test('consecutive messages of one role merge into one turn', () => {
    const out = toGeminiRequest(
      request({
        messages: [
          { role: 'user', content: 'one' },
          { role: 'user', content: 'two' },
        ],
      }),
    );
    assert.deepEqual(out.contents, [{ role: 'user', parts: [{ text: 'one' }, { text: 'two' }] }]);
  });

  test('images: data URLs become inlineData, http(s) URLs become fileData with a MIME type', () => {
    const out = toGeminiRequest(
      request({
        messages: [
          {
            role: 'user',
            content: [
              { type: 'text', text: 'What is this?' },
              { type: 'image_url', image_url: { url: 'data:image/png;base64,iVBORw0KGgo=' } },
              { type: 'image_url', image_url: { url: 'https://example.com/cat.webp?size=2' } },
              { type: 'image_url', image_url: { url: 'https://example.com/photo' } },
            ],
          },
        ],
      }),
    );
    assert.deepEqual(out.contents[0]?.parts, [
      { text: 'What is this?' },
      { inlineData: { mimeType: 'image/png', data: 'iVBORw0KGgo=' } },
      { fileData: { mimeType: 'image/webp', fileUri: 'https://example.com/cat.webp?size=2' } },
      { fileData: { mimeType: 'image/jpeg', fileUri: 'https://example.com/photo' } },
    ]);
  });

  test('an image URL of another scheme is a 400 naming the part', () => {
    assert.throws(
      () =>
        toGeminiRequest(
          request({
            messages: [
              { role: 'user', content: [{ type: 'image_url', image_url: { url: 'file:///etc/passwd' } }] },
            ],
          }),
        ),
      (error: unknown) =>
        GatewayError.is(error) && error.status === 400 && error.param === 'messages[0].content[0]',
    );
  });

  test('tools become functionDeclarations with the schema cleaned of keys Gemini rejects', () => {
    const out = toGeminiRequest(
      request({
        tools: [
          {
            type: 'function',
            function: {
              name: 'get_weather',
              description: 'Weather for a city',
              parameters: {
                $schema: 'http://json-schema.org/draft-07/schema#',
                type: 'object',
                additionalProperties: false,
                properties: {
                  location: { type: 'string', description: 'City' },
                  unit: { type: ['string', 'null'], enum: ['celsius', 'fahrenheit'] },
                  days: {
                    type: 'array',
                    items: { type: 'integer', additionalProperties: false, minimum: 1 },
                  },
                },
                required: ['location'],
              },
            },
          },
        ],
        tool_choice: 'auto',
      }),
    );
    assert.deepEqual(out.tools, [
      {
        functionDeclarations: [
          {
            name: 'get_weather',
            description: 'Weather for a city',
            parameters: {
              type: 'object',
              properties: {
                location: { type: 'string', description: 'City' },
                unit: { type: 'string', nullable: true, enum: ['celsius', 'fahrenheit'] },
                days: { type: 'array', items: { type: 'integer', minimum: 1 } },
              },
              required: ['location'],
            },
          },
        ],
      },
    ]);
    assert.deepEqual(out.toolConfig, { functionCallingConfig: { mode: 'AUTO' } });
  });

  test('tool_choice none / required / named function', () => {
    assert.deepEqual(toGeminiRequest(request({ tool_choice: 'none' })).toolConfig, {
      functionCallingConfig: { mode: 'NONE' },
    });
    assert.deepEqual(toGeminiRequest(request({ tool_choice: 'required' })).toolConfig, {
      functionCallingConfig: { mode: 'ANY' },
    });
    assert.deepEqual(
      toGeminiRequest(request({ tool_choice: { type: 'function', function: { name: 'lookup' } } }))
        .toolConfig,
      { functionCallingConfig: { mode: 'ANY', allowedFunctionNames: ['lookup'] } },
    );
    assert.throws(() => toGeminiRequest(request({ tool_choice: 'sometimes' })), /tool_choice/);
  });

  test('tool calls and results round-trip: the function name is recovered from the call id', () => {
    const out = toGeminiRequest(
      request({
        messages: [
          { role: 'user', content: 'Weather in Paris and Rome?' },
          {
            role: 'assistant',
            content: null,
            tool_calls: [
              {
                id: 'call_0',
                type: 'function',
                function: { name: 'get_weather', arguments: '{"location":"Paris"}' },
              },
              {
                id: 'call_1',
                type: 'function',
                function: { name: 'get_time', arguments: '{"city":"Rome"}' },
              },
            ],
          },
          { role: 'tool', tool_call_id: 'call_1', content: '13:00' },
          { role: 'tool', tool_call_id: 'call_0', content: '{"temperature":21}' },
        ],
      }),
    );
    assert.deepEqual(out.contents, [
      { role: 'user', parts: [{ text: 'Weather in Paris and Rome?' }] },
      {
        role: 'model',
        parts: [
          { functionCall: { name: 'get_weather', args: { location: 'Paris' } } },
          { functionCall: { name: 'get_time', args: { city: 'Rome' } } },
        ],
      },
      {
        role: 'user',
        parts: [
          { functionResponse: { name: 'get_time', response: { content: '13:00' } } },
          { functionResponse: { name: 'get_weather', response: { temperature: 21 } } },
        ],
      },
    ]);
  });

  test('a tool result whose call id is unknown is a clear 400', () => {
    assert.throws(
      () => toGeminiRequest(request({ messages: [{ role: 'tool', tool_call_id: 'call_9', content: 'x' }] })),
      (error: unknown) =>
        GatewayError.is(error) && error.code === 'invalid_request' && /call_9/.test(error.message),
    );
  });

  test('tool call arguments that are not a JSON object are a 400', () => {
    assert.throws(
      () =>
        toGeminiRequest(
          request({
            messages: [
              {
                role: 'assistant',
                tool_calls: [{ id: 'c', type: 'function', function: { name: 'f', arguments: '[1,2' } }],
              },
            ],
          }),
        ),
      (error: unknown) =>
        GatewayError.is(error) && error.param === 'messages[0].tool_calls[0].function.arguments',
    );
  });

  test('generationConfig from sampling parameters and response_format', () => {
    const out = toGeminiRequest(
      request({
        temperature: 0.2,
        top_p: 0.9,
        max_tokens: 100,
        max_completion_tokens: 50,
        stop: 'END',
        n: 2,
        seed: 7,
        response_format: {
          type: 'json_schema',
          json_schema: { name: 'x', schema: { type: 'object', additionalProperties: false, properties: {} } },
        },
      }),
    );
    assert.deepEqual(out.generationConfig, {
      temperature: 0.2,
      topP: 0.9,
      maxOutputTokens: 50,
      stopSequences: ['END'],
      candidateCount: 2,
      seed: 7,
      responseMimeType: 'application/json',
      responseSchema: { type: 'object', properties: {} },
    });
    const json = toGeminiRequest(request({ response_format: { type: 'json_object' }, stop: ['a', 'b'] }));
    assert.deepEqual(json.generationConfig, {
      stopSequences: ['a', 'b'],
      responseMimeType: 'application/json',
    });
  });

  test('cleanSchema keeps anyOf members cleaned', () => {
    assert.deepEqual(cleanSchema({ anyOf: [{ type: 'string', $id: 'x' }, { type: 'number' }], $defs: {} }), {
      anyOf: [{ type: 'string' }, { type: 'number' }],
    });
  });
});

describe('GenerateContentResponse → canonical completion', () => {
  test('text answer with usage', () => {
    const completion = fromGeminiResponse(
      {
        candidates: [
          {
            content: { role: 'model', parts: [{ text: 'Hello' }, { text: ' there' }] },
            finishReason: 'STOP',
            index: 0,
          },
        ],
        usageMetadata: { promptTokenCount: 5, candidatesTokenCount: 2, totalTokenCount: 7 },
        responseId: 'abc',
      },
      'gemini-2.5-flash',
      1_700_000_000,
    );
    assert.deepEqual(completion, {
      id: 'chatcmpl-abc',
      object: 'chat.completion',
      created: 1_700_000_000,
      model: 'gemini-2.5-flash',
      choices: [
        {
          index: 0,
          message: { role: 'assistant', content: 'Hello there' },
          finish_reason: 'stop',
          logprobs: null,
        },
      ],
      usage: { prompt_tokens: 5, completion_tokens: 2, total_tokens: 7 },
    });
  });

  test('function calls get stable ids call_<n> and finish_reason tool_calls; thoughts are not answer text', () => {
    const completion = fromGeminiResponse(
      {
        candidates: [
          {
            content: {
              role: 'model',
              parts: [
                { text: 'Let me think', thought: true },
                { functionCall: { name: 'get_weather', args: { location: 'Paris' } } },
                { functionCall: { name: 'get_time', args: {} } },
              ],
            },
            finishReason: 'STOP',
          },
        ],
      },
      'm',
    );
    const choice = completion.choices[0]!;
    assert.equal(choice.finish_reason, 'tool_calls');
    assert.equal(choice.message.content, null);
    assert.deepEqual(choice.message.tool_calls, [
      {
        id: 'call_0',
        type: 'function',
        function: { name: 'get_weather', arguments: '{"location":"Paris"}' },
      },
      { id: 'call_1', type: 'function', function: { name: 'get_time', arguments: '{}' } },
    ]);
  });

  test('finish reasons: MAX_TOKENS → length; SAFETY family → content_filter', () => {
    const reasonOf = (finishReason: string) =>
      fromGeminiResponse({ candidates: [{ content: { parts: [{ text: 'x' }] }, finishReason }] }, 'm')
        .choices[0]?.finish_reason;
    assert.equal(reasonOf('MAX_TOKENS'), 'length');
    for (const reason of ['SAFETY', 'RECITATION', 'BLOCKLIST', 'PROHIBITED_CONTENT', 'SPII']) {
      assert.equal(reasonOf(reason), 'content_filter', reason);
    }
    assert.equal(reasonOf('OTHER'), 'stop');
  });

  test('a safety-stopped candidate with no content is an empty content_filter answer', () => {
    const completion = fromGeminiResponse({ candidates: [{ finishReason: 'SAFETY', index: 0 }] }, 'm');
    assert.equal(completion.choices[0]?.message.content, '');
    assert.equal(completion.choices[0]?.finish_reason, 'content_filter');
  });

  test('a blocked prompt is a content_filter answer, not an error', () => {
    const completion = fromGeminiResponse(
      {
        promptFeedback: { blockReason: 'SAFETY' },
        usageMetadata: { promptTokenCount: 4, totalTokenCount: 4 },
      },
      'm',
    );
    assert.deepEqual(completion.choices, [
      {
        index: 0,
        message: { role: 'assistant', content: null },
        finish_reason: 'content_filter',
        logprobs: null,
      },
    ]);
    assert.deepEqual(completion.usage, { prompt_tokens: 4, completion_tokens: 0, total_tokens: 4 });
  });

  test('no candidates and no block reason is a bad upstream response', () => {
    assert.throws(
      () => fromGeminiResponse({}, 'm'),
      (error: unknown) => GatewayError.is(error) && error.code === 'upstream_bad_response',
    );
  });

  test('several candidates become several choices', () => {
    const completion = fromGeminiResponse(
      {
        candidates: [
          { content: { parts: [{ text: 'a' }] }, finishReason: 'STOP', index: 0 },
          { content: { parts: [{ text: 'b' }] }, finishReason: 'MAX_TOKENS', index: 1 },
        ],
      },
      'm',
    );
    assert.deepEqual(
      completion.choices.map((c) => [c.index, c.message.content, c.finish_reason]),
      [
        [0, 'a', 'stop'],
        [1, 'b', 'length'],
      ],
    );
  });

  test('usage: thoughts are completion tokens and reasoning_tokens; cached content is cached_tokens', () => {
    assert.deepEqual(
      toUsage({
        promptTokenCount: 100,
        candidatesTokenCount: 20,
        thoughtsTokenCount: 30,
        cachedContentTokenCount: 60,
        totalTokenCount: 150,
      }),
      {
        prompt_tokens: 100,
        completion_tokens: 50,
        total_tokens: 150,
        prompt_tokens_details: { cached_tokens: 60 },
        completion_tokens_details: { reasoning_tokens: 30 },
      },
    );
    assert.equal(toUsage(undefined), undefined);
  });
});

describe('Google error bodies → gateway errors', () => {
  const body = (code: number, status: string, message: string, details?: unknown[]) =>
    JSON.stringify({ error: { code, message, status, ...(details ? { details } : {}) } });

  test('429 RESOURCE_EXHAUSTED: retryable, wait from RetryInfo, retry-after header wins', () => {
    const text = body(429, 'RESOURCE_EXHAUSTED', 'quota', [
      { '@type': 'type.googleapis.com/google.rpc.RetryInfo', retryDelay: '7s' },
    ]);
    const fromBody = mapGeminiError(429, {}, text, identity);
    assert.equal(fromBody.code, 'upstream_rate_limited');
    assert.equal(fromBody.retryable, true);
    assert.equal(fromBody.retryAfterMs, 7000);
    assert.equal(mapGeminiError(429, { 'retry-after': '2' }, text, identity).retryAfterMs, 2000);
  });

  test('token-limit INVALID_ARGUMENT is context_length_exceeded; other 400s stay client errors', () => {
    const tooLong = mapGeminiError(
      400,
      {},
      body(
        400,
        'INVALID_ARGUMENT',
        'The input token count (1200000) exceeds the maximum number of tokens allowed (1048576).',
      ),
      identity,
    );
    assert.equal(tooLong.code, 'context_length_exceeded');
    assert.equal(tooLong.status, 400);
    const other = mapGeminiError(400, {}, body(400, 'INVALID_ARGUMENT', 'Bad field'), identity);
    assert.equal(other.code, 'upstream_client_error');
    assert.equal(other.retryable, false);
    assert.equal(other.message, 'Bad field');
  });

  test('bad key (400 API_KEY_INVALID), 401 and 403 are our credentials: 502, message not relayed', () => {
    const key = 'AIzaSyCANARY-0123456789';
    const invalidKey = mapGeminiError(
      400,
      {},
      body(400, 'INVALID_ARGUMENT', `API key not valid: ${key}`, [{ reason: 'API_KEY_INVALID' }]),
      identity,
    );
    assert.equal(invalidKey.code, 'upstream_auth_error');
    assert.equal(invalidKey.status, 502);
    assert.ok(!invalidKey.message.includes(key));
    assert.equal(
      mapGeminiError(403, {}, body(403, 'PERMISSION_DENIED', 'no'), identity).code,
      'upstream_auth_error',
    );
    assert.equal(
      mapGeminiError(401, {}, body(401, 'UNAUTHENTICATED', 'no'), identity).code,
      'upstream_auth_error',
    );
  });

  test('NOT_FOUND keeps 404; INTERNAL, UNAVAILABLE, DEADLINE_EXCEEDED are retryable upstream failures', () => {
    const notFound = mapGeminiError(404, {}, body(404, 'NOT_FOUND', 'models/x is not found'), identity);
    assert.equal(notFound.status, 404);
    assert.equal(notFound.retryable, false);
    assert.equal(mapGeminiError(500, {}, body(500, 'INTERNAL', 'oops'), identity).code, 'upstream_error');
    assert.equal(
      mapGeminiError(503, {}, body(503, 'UNAVAILABLE', 'overloaded'), identity).code,
      'upstream_overloaded',
    );
    assert.equal(
      mapGeminiError(504, {}, body(504, 'DEADLINE_EXCEEDED', 'slow'), identity).code,
      'upstream_timeout',
    );
  });

  test('messages are redacted; a non-JSON body is never relayed', () => {
    const error = mapGeminiError(500, {}, body(500, 'INTERNAL', 'key SECRETKEY123 failed'), (t) =>
      t.split('SECRETKEY123').join('[redacted]'),
    );
    assert.equal(error.message, 'key [redacted] failed');
    assert.equal(
      mapGeminiError(502, {}, '<html>Bad gateway</html>', identity).message,
      'Upstream returned HTTP 502',
    );
  });
});
