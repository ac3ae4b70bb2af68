/**
 * What the inbound Anthropic translation costs per request and per stream
 * chunk, in process (no network): validate + translate a typical request
 * (system, 6 turns, a tool round trip, 2 tools), translate a completion with a
 * tool call back, and translate + encode one streamed text chunk.
 *
 * Run: node bench/anthropic-translation.ts  (BENCH_ITERATIONS, default 50000)
 */

import { fromAnthropicRequest } from '../src/api/anthropic/anthropic-inbound-request.ts';
import { toAnthropicMessage } from '../src/api/anthropic/anthropic-inbound-response.ts';
import { AnthropicInboundStreamEncoder, encodeEvent } from '../src/api/anthropic/anthropic-inbound-stream.ts';
import { validateMessagesRequest } from '../src/api/anthropic/anthropic-validate.ts';
import type { ChatCompletion, ChatCompletionChunk } from '../src/core/types.ts';

const iterations = Number(process.env['BENCH_ITERATIONS'] ?? 50_000);

const tool = (name: string) => ({
  name,
  description: `The ${name} tool`,
  input_schema: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
});

const body = {
  model: 'fast',
  max_tokens: 1024,
  system: 'You are a helpful assistant. Answer briefly.',
  tools: [tool('get_weather'), tool('get_time')],
  messages: [
    { role: 'user', content: 'Hello, who are you?' },
    { role: 'assistant', content: [{ type: 'text', text: 'I am an assistant.' }] },
    { role: 'user', content: 'What is the weather in Paris?' },
    {
      role: 'assistant',
      content: [{ type: 'tool_use', id: 'toolu_1', name: 'get_weather', input: { city: 'Paris' } }],
    },
    { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_1', content: 'sunny, 21C' }] },
    { role: 'assistant', content: 'It is sunny and 21C in Paris.' },
  ],
};

const completion: ChatCompletion = {
  id: 'chatcmpl-1',
  object: 'chat.completion',
  created: 1,
  model: 'gpt-4o-mini',
  choices: [
    {
      index: 0,
      message: {
        role: 'assistant',
        content: 'Let me check.',
        tool_calls: [
          { id: 'call_1', type: 'function', function: { name: 'get_time', arguments: '{"city":"Rome"}' } },
        ],
      },
      finish_reason: 'tool_calls',
    },
  ],
  usage: { prompt_tokens: 120, completion_tokens: 12, total_tokens: 132 },
};

const chunk: ChatCompletionChunk = {
  id: 'chatcmpl-1',
  object: 'chat.completion.chunk',
  created: 1,
  model: 'gpt-4o-mini',
  choices: [{ index: 0, delta: { content: ' word' }, finish_reason: null }],
};

function measure(name: string, fn: () => void): void {
  for (let i = 0; i < Math.min(iterations, 5_000); i++) fn();
  const start = process.hrtime.bigint();
  for (let i = 0; i < iterations; i++) fn();
  const ns = Number(process.hrtime.bigint() - start) / iterations;
  console.log(`${name.padEnd(48)} ${(ns / 1000).toFixed(2).padStart(8)} µs/op`);
}

measure('request: validate + translate (6 turns, 2 tools)', () => {
  fromAnthropicRequest(validateMessagesRequest(structuredClone(body)));
});
measure('request: structuredClone alone (baseline)', () => {
  structuredClone(body);
});
measure('response: completion with a tool call → Message', () => {
  JSON.stringify(toAnthropicMessage(completion, { model: 'fast' }));
});
const translator = new AnthropicInboundStreamEncoder({ model: 'fast' });
translator.push(chunk);
measure('stream: one text chunk → events → SSE text', () => {
  let frame = '';
  for (const event of translator.push(chunk)) frame += encodeEvent(event);
  if (frame.length === 0) throw new Error('no frame');
});
