/**
 * The Anthropic protocol's shared tables (stop reasons, usage, error types)
 * read both ways, and the passthrough relay's framing and billing.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { encodeFrame } from '../../src/api/anthropic/anthropic-inbound-stream.ts';
import { AnthropicEventRelay } from '../../src/api/anthropic/anthropic-relay.ts';
import { AnthropicEventTally } from '../../src/billing/anthropic-event-tally.ts';
import { estimateCompletionTokens } from '../../src/core/token-estimate.ts';
import { errorTypeOfStatus, statusOfErrorType } from '../../src/providers/anthropic/anthropic-error.ts';
import { toFinishReason, toStopInfo } from '../../src/providers/anthropic/anthropic-stop.ts';
import { fromCanonicalUsage, toCanonicalUsage } from '../../src/providers/anthropic/anthropic-usage.ts';
import { SseParser } from '../../src/providers/sse.ts';

const estimates = { promptTokens: () => 42 };

describe('stop reason ⇄ finish reason', () => {
  test('each finish reason maps back to a stop reason that maps to it again', () => {
    for (const finish of ['stop', 'length', 'tool_calls', 'content_filter'] as const) {
      assert.equal(toFinishReason(toStopInfo(finish, undefined, undefined).stop_reason), finish);
    }
    assert.equal(toFinishReason('model_context_window_exceeded'), 'length');
    assert.equal(toFinishReason('pause_turn'), 'stop');
    assert.equal(toFinishReason('a_future_reason'), 'stop');
    assert.equal(toStopInfo('function_call', undefined, undefined).stop_reason, 'tool_use');
  });

  test('a stop is a stop_sequence only when the matched sequence is one the client gave', () => {
    assert.deepEqual(toStopInfo('stop', 'END', ['END']), {
      stop_reason: 'stop_sequence',
      stop_sequence: 'END',
    });
    assert.deepEqual(toStopInfo('stop', 'END', ['OTHER']), { stop_reason: 'end_turn', stop_sequence: null });
    assert.deepEqual(toStopInfo('length', 'END', ['END']), {
      stop_reason: 'max_tokens',
      stop_sequence: null,
    });
  });
});

describe('usage', () => {
  test('cache reads and writes count into prompt_tokens, and come back out', () => {
    const anthropic = {
      input_tokens: 10,
      output_tokens: 4,
      cache_read_input_tokens: 7,
      cache_creation_input_tokens: 3,
    };
    const canonical = toCanonicalUsage(anthropic);
    assert.equal(canonical.prompt_tokens, 20);
    assert.equal(canonical.total_tokens, 24);
    assert.equal(canonical.prompt_tokens_details?.cached_tokens, 7);
    assert.deepEqual(fromCanonicalUsage(canonical), anthropic);
    assert.deepEqual(fromCanonicalUsage(undefined), {
      input_tokens: 0,
      output_tokens: 0,
      cache_creation_input_tokens: 0,
      cache_read_input_tokens: 0,
    });
  });
});

describe('error types ⇄ statuses', () => {
  test("Anthropic's documented pairs, read both ways; unknowns by class", () => {
    for (const [type, status] of [
      ['invalid_request_error', 400],
      ['authentication_error', 401],
      ['billing_error', 402],
      ['permission_error', 403],
      ['not_found_error', 404],
      ['request_too_large', 413],
      ['rate_limit_error', 429],
      ['api_error', 500],
      ['timeout_error', 504],
      ['overloaded_error', 529],
    ] as const) {
      assert.equal(statusOfErrorType(type), status);
      assert.equal(errorTypeOfStatus(status), type);
    }
    assert.equal(statusOfErrorType('some_new_error'), 500);
    assert.equal(statusOfErrorType(undefined), 500);
    assert.equal(statusOfErrorType('toString'), 500);
    assert.equal(errorTypeOfStatus(418), 'invalid_request_error');
    assert.equal(errorTypeOfStatus(502), 'api_error');
  });
});

describe('passthrough relay', () => {
  const start = {
    event: 'message_start',
    data: JSON.stringify({
      type: 'message_start',
      message: {
        id: 'msg_1',
        type: 'message',
        role: 'assistant',
        model: 'claude-upstream-id',
        content: [],
        usage: { input_tokens: 12, output_tokens: 1, cache_read_input_tokens: 2, service_tier: 'standard' },
      },
    }),
  };
  const delta = (text: string) => ({
    event: 'content_block_delta',
    data: JSON.stringify({ type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text } }),
  });

  test('message_start names the client model; other events go out byte for byte', () => {
    const relay = new AnthropicEventRelay('my-alias');
    const frame = relay.relay(start);
    const [event] = new SseParser().push(new TextEncoder().encode(frame));
    const data = JSON.parse(event!.data) as { message: { model: string; usage: Record<string, unknown> } };
    assert.equal(data.message.model, 'my-alias');
    assert.equal(data.message.usage['service_tier'], 'standard');
    const raw = delta('hello');
    assert.equal(relay.relay(raw), `event: content_block_delta\ndata: ${raw.data}\n\n`);
    // Not JSON: still relayed as sent (the client's SDK judges it), just not counted.
    assert.equal(relay.relay({ event: 'weird', data: 'not json' }), 'event: weird\ndata: not json\n\n');
  });

  test('multi-line data keeps one data field a line, so the client reads it back whole', () => {
    const frame = encodeFrame('x', 'line one\nline two');
    assert.equal(frame, 'event: x\ndata: line one\ndata: line two\n\n');
    const [event] = new SseParser().push(new TextEncoder().encode(frame));
    assert.equal(event?.data, 'line one\nline two');
  });

  test("billing: the upstream's counts once message_delta gave them, else input exact and output estimated", () => {
    const relayed = () => {
      const tally = new AnthropicEventTally();
      return { tally, relay: new AnthropicEventRelay('m', tally) };
    };
    const complete = relayed();
    complete.relay.relay(start);
    complete.relay.relay(delta('hello world'));
    complete.relay.relay({
      event: 'message_delta',
      data: JSON.stringify({
        type: 'message_delta',
        delta: { stop_reason: 'end_turn' },
        usage: { output_tokens: 9 },
      }),
    });
    const billed = complete.tally.billed(estimates.promptTokens);
    assert.equal(billed.source, 'upstream');
    assert.equal(billed.usage.prompt_tokens, 14);
    assert.equal(billed.usage.completion_tokens, 9);

    const cut = relayed();
    cut.relay.relay(start);
    assert.equal(cut.tally.sawContent, false);
    cut.relay.relay(delta('some text'));
    cut.relay.relay(delta(' and more'));
    assert.equal(cut.tally.sawContent, true);
    const partial = cut.tally.billed(estimates.promptTokens);
    assert.equal(partial.source, 'estimated');
    assert.equal(partial.usage.prompt_tokens, 14);
    assert.equal(partial.usage.completion_tokens, Math.max(1, estimateCompletionTokens(2, 18)));

    const none = new AnthropicEventTally().billed(estimates.promptTokens);
    assert.deepEqual(none, {
      usage: { prompt_tokens: 42, completion_tokens: 0, total_tokens: 42 },
      source: 'estimated',
    });
  });
});
