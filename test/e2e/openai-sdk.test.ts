import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import OpenAI from 'openai';
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts';

describe('official openai SDK against the gateway (built-in mock provider)', () => {
  let gw: TestGateway;
  let client: OpenAI;
  before(async () => {
    gw = await startTestGateway();
    client = new OpenAI({ baseURL: gw.baseUrl, apiKey: gw.masterKey, maxRetries: 0 });
  });
  after(() => gw.close());

  test('chat completion', async () => {
    const completion = await client.chat.completions.create({
      model: 'mock',
      messages: [{ role: 'user', content: 'hello world' }],
    });
    assert.equal(completion.object, 'chat.completion');
    assert.equal(completion.model, 'mock');
    assert.equal(completion.choices[0]?.message.content, 'Mock reply to: hello world');
    assert.equal(completion.choices[0]?.finish_reason, 'stop');
    assert.equal(completion.usage?.completion_tokens, 5);
  });

  test('streamed chat completion with usage', async () => {
    const stream = await client.chat.completions.create({
      model: 'mock',
      stream: true,
      stream_options: { include_usage: true },
      messages: [{ role: 'user', content: 'one two three' }],
    });
    let text = '';
    let usage: OpenAI.CompletionUsage | null | undefined;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta.content ?? '';
      if (chunk.usage) usage = chunk.usage;
    }
    assert.equal(text, 'Mock reply to: one two three');
    assert.equal(usage?.completion_tokens, 6);
  });
});
