/**
 * What the inbound Anthropic translation (`/v1/messages`) costs per request,
 * in process (no network): validate + translate a typical request (system,
 * 6 turns, a tool round trip, 2 tools; the body is cloned each time, since
 * validation may normalise it, so the clone alone is measured too), and
 * translate a completion with a tool call back. Streamed chunks are measured
 * by bench/components.ts (anthropic inbound, chunks/s).
 *
 * Part of `npm run bench` (the component table). Run alone:
 * node bench/anthropic-translation.ts  (BENCH_ITERATIONS, default 50000)
 */
import { fromAnthropicRequest } from '../src/api/anthropic/anthropic-inbound-request.ts';
import { toAnthropicMessage } from '../src/api/anthropic/anthropic-inbound-response.ts';
import { validateMessagesRequest } from '../src/api/anthropic/anthropic-validate.ts';
import type { ChatCompletion } from '../src/core/types.ts';

export interface AnthropicTranslationBench {
  /** Validate + translate one request, clone included. */
  requestUs: number;
  /** The clone alone. */
  requestCloneUs: number;
  /** A completion with a tool call → an Anthropic Message, serialised. */
  responseUs: number;
}

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

/** µs per call of `fn`, after a warm-up. */
function measure(iterations: number, fn: () => void): number {
  for (let i = 0; i < Math.min(iterations, 5_000); i++) fn();
  const start = process.hrtime.bigint();
  for (let i = 0; i < iterations; i++) fn();
  return Number(process.hrtime.bigint() - start) / iterations / 1000;
}

export function benchAnthropicTranslation(iterations = 50_000): AnthropicTranslationBench {
  return {
    requestUs: measure(iterations, () => {
      fromAnthropicRequest(validateMessagesRequest(structuredClone(body)));
    }),
    requestCloneUs: measure(iterations, () => {
      structuredClone(body);
    }),
    responseUs: measure(iterations, () => {
      JSON.stringify(toAnthropicMessage(completion, { model: 'fast' }));
    }),
  };
}

if (import.meta.main) {
  const r = benchAnthropicTranslation(Number(process.env['BENCH_ITERATIONS'] ?? 50_000));
  const line = (name: string, us: number) =>
    console.log(`${name.padEnd(48)} ${us.toFixed(2).padStart(8)} µs/op`);
  line('request: validate + translate (6 turns, 2 tools)', r.requestUs);
  line('request: structuredClone alone (baseline)', r.requestCloneUs);
  line('response: completion with a tool call → Message', r.responseUs);
}
