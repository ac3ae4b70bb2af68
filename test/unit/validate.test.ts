import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { validateChatRequest, validateEmbeddingRequest } from '../../src/api/openai/openai-validate.ts';
import { GatewayError } from '../../src/core/errors.ts';

const ok = { model: 'm', messages: [{ role: 'user', content: 'hi' }] };

function rejects(body: unknown, param: string): void {
  assert.throws(
    () => validateChatRequest(body),
    (error: unknown) => GatewayError.is(error) && error.status === 400 && error.param === param,
    `expected a 400 naming ${param}`,
  );
}

describe('chat request validation', () => {
  test('a minimal request passes and unknown fields survive untouched', () => {
    const body = { ...ok, some_new_param: { x: 1 }, reasoning_effort: 'low' };
    assert.equal(validateChatRequest(body), body);
  });

  test('structure errors name the field', () => {
    rejects(null, 'body');
    rejects([ok], 'body');
    rejects({ messages: ok.messages }, 'model');
    rejects({ ...ok, model: 'x'.repeat(201) }, 'model');
    rejects({ model: 'm' }, 'messages');
    rejects({ model: 'm', messages: [] }, 'messages');
    rejects({ model: 'm', messages: ['hi'] }, 'messages[0]');
    rejects({ model: 'm', messages: [{ role: 'wizard', content: 'hi' }] }, 'messages[0].role');
    rejects({ model: 'm', messages: [{ role: 'user', content: 42 }] }, 'messages[0].content');
    rejects(
      { model: 'm', messages: [{ role: 'user', content: [{ text: 'no type' }] }] },
      'messages[0].content[0]',
    );
    rejects({ ...ok, stream: 'yes' }, 'stream');
    rejects({ ...ok, tools: [{ type: 'function', function: {} }] }, 'tools[0].function.name');
  });

  test('parameter bombs are refused before any upstream call', () => {
    rejects({ ...ok, n: 1_000_000 }, 'n');
    rejects({ ...ok, max_tokens: 1e12 }, 'max_tokens');
    rejects({ ...ok, max_tokens: 1.5 }, 'max_tokens');
    rejects({ ...ok, max_completion_tokens: -1 }, 'max_completion_tokens');
    rejects({ ...ok, top_logprobs: 1000 }, 'top_logprobs');
    rejects({ ...ok, temperature: Number.NaN }, 'temperature');
    rejects({ ...ok, temperature: 5 }, 'temperature');
    rejects({ ...ok, stop: Array.from({ length: 10_000 }, () => 'x') }, 'stop');
    rejects(
      { ...ok, tools: Array.from({ length: 1000 }, () => ({ type: 'function', function: { name: 'f' } })) },
      'tools',
    );
    rejects({ model: 'm', messages: Array.from({ length: 100_000 }, () => ok.messages[0]) }, 'messages');
  });

  test('fields that would pick the upstream are refused', () => {
    for (const field of ['api_base', 'base_url', 'api_key', 'api_version', 'azure_endpoint']) {
      rejects({ ...ok, [field]: 'http://attacker.example' }, field);
    }
  });
});

describe('embedding request validation', () => {
  test('accepts strings, string arrays and token arrays', () => {
    for (const input of ['a', ['a', 'b'], [1, 2, 3], [[1, 2], [3]]]) {
      assert.doesNotThrow(() => validateEmbeddingRequest({ model: 'e', input }));
    }
  });

  test('refuses bad input and formats', () => {
    for (const body of [
      { model: 'e' },
      { model: 'e', input: [] },
      { model: 'e', input: [1, 'a'] },
      { model: 'e', input: Array.from({ length: 5000 }, () => 'x') },
    ]) {
      assert.throws(
        () => validateEmbeddingRequest(body),
        (e: unknown) => GatewayError.is(e) && e.param === 'input',
      );
    }
    assert.throws(
      () => validateEmbeddingRequest({ model: 'e', input: 'a', encoding_format: 'hex' }),
      (e: unknown) => GatewayError.is(e) && e.param === 'encoding_format',
    );
  });
});
