/**
 * What one streamed text event costs an Anthropic client talking to an
 * Anthropic upstream, in process (no network): relayed as it came
 * (passthrough) against the round trip through the canonical shape it took
 * before (Anthropic event → canonical chunk → Anthropic event → SSE text).
 *
 * Part of `npm run bench` (the component table). Run alone:
 * node bench/anthropic-relay.ts  (BENCH_ITERATIONS, default 100000)
 */

import {
  encodeEvent,
  AnthropicInboundStreamEncoder as Inbound,
} from '../src/api/anthropic/anthropic-inbound-stream.ts';
import { AnthropicEventRelay } from '../src/api/anthropic/anthropic-relay.ts';
import { AnthropicEventTally } from '../src/billing/anthropic-event-tally.ts';
import { AnthropicUpstreamStreamParser as Outbound } from '../src/providers/anthropic/anthropic-stream.ts';

export interface AnthropicRelayBench {
  /** µs per text event relayed as it came. */
  passthroughUs: number;
  /** µs per text event through the canonical shape and back. */
  translatedUs: number;
}

const start = {
  event: 'message_start',
  data: JSON.stringify({
    type: 'message_start',
    message: {
      id: 'msg_1',
      type: 'message',
      role: 'assistant',
      model: 'claude-sonnet-4-5',
      content: [],
      stop_reason: null,
      stop_sequence: null,
      usage: { input_tokens: 120, output_tokens: 1 },
    },
  }),
};
const blockStart = {
  event: 'content_block_start',
  data: JSON.stringify({ type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } }),
};
const delta = {
  event: 'content_block_delta',
  data: JSON.stringify({
    type: 'content_block_delta',
    index: 0,
    delta: { type: 'text_delta', text: ' word' },
  }),
};

/** µs per call of `fn`, after a warm-up. */
function measure(iterations: number, fn: () => void): number {
  for (let i = 0; i < Math.min(iterations, 5_000); i++) fn();
  const begin = process.hrtime.bigint();
  for (let i = 0; i < iterations; i++) fn();
  return Number(process.hrtime.bigint() - begin) / iterations / 1000;
}

export function benchAnthropicRelay(iterations = 100_000): AnthropicRelayBench {
  const relay = new AnthropicEventRelay('fast', new AnthropicEventTally());
  relay.relay(start);
  relay.relay(blockStart);
  const passthroughUs = measure(iterations, () => {
    if (relay.relay(delta).length === 0) throw new Error('no frame');
  });

  const outbound = new Outbound();
  const inbound = new Inbound({ model: 'fast' });
  for (const chunk of [...outbound.translate(start), ...outbound.translate(blockStart)]) inbound.push(chunk);
  const translatedUs = measure(iterations, () => {
    let frame = '';
    for (const chunk of outbound.translate(delta))
      for (const event of inbound.push(chunk)) frame += encodeEvent(event);
    if (frame.length === 0) throw new Error('no frame');
  });
  return { passthroughUs, translatedUs };
}

if (import.meta.main) {
  const r = benchAnthropicRelay(Number(process.env['BENCH_ITERATIONS'] ?? 100_000));
  const line = (name: string, us: number) =>
    console.log(`${name.padEnd(52)} ${us.toFixed(2).padStart(8)} µs/op`);
  line('passthrough: one text event relayed', r.passthroughUs);
  line('translated: one text event → chunk → event → SSE', r.translatedUs);
}
