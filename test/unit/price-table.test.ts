/**
 * The price table: exact micro-dollars from canonical usage, each kind of
 * input token at its own rate, dated snapshots priced as their family,
 * overrides, unknown models.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { PriceTable } from '../../src/core/price-table.ts';

const usage = (prompt: number, completion: number, extra: Record<string, unknown> = {}) => ({
  prompt_tokens: prompt,
  completion_tokens: completion,
  total_tokens: prompt + completion,
  ...extra,
});

describe('price table', () => {
  const table = new PriceTable({ 'my-model': { input: 1, output: 2 }, 'gpt-4o': { input: 5, output: 20 } });

  test('a token at $P per million costs P micro-dollars; rounded once per attempt', () => {
    assert.equal(table.costMicros('gpt-4o-mini', usage(1_000_000, 0)), 150_000);
    assert.equal(table.costMicros('gpt-4o-mini', usage(10, 3)), Math.round(10 * 0.15 + 3 * 0.6));
    assert.equal(table.costMicros('my-model', usage(7, 5)), 17);
  });

  test('cache reads and writes at their own rates; reasoning is output', () => {
    const u = usage(2_000, 100, {
      prompt_tokens_details: { cached_tokens: 1_000 },
      cache_creation_input_tokens: 500,
      completion_tokens_details: { reasoning_tokens: 60 },
    });
    // claude-sonnet-4-5: 3 in, 0.3 read, 3.75 write, 15 out.
    assert.equal(
      table.costMicros('claude-sonnet-4-5', u),
      Math.round(500 * 3 + 1_000 * 0.3 + 500 * 3.75 + 100 * 15),
    );
    // Without its own cache rates a model prices cached input as input.
    assert.equal(table.costMicros('my-model', u), 2_000 + 200);
  });

  test('dated snapshots are priced as their family; overrides win; unknown is null, no usage is 0', () => {
    assert.deepEqual(table.priceOf('gpt-4o-mini-2024-07-18'), table.priceOf('gpt-4o-mini'));
    assert.deepEqual(table.priceOf('claude-3-5-haiku-20241022'), table.priceOf('claude-3-5-haiku-latest'));
    assert.equal(table.priceOf('gpt-4o')?.input, 5);
    assert.equal(table.costMicros('no-such-model', usage(10, 10)), null);
    assert.equal(table.priceOf('no-such-model-2024-01-01'), undefined);
    assert.equal(table.costMicros('gpt-4o-mini', undefined), 0);
    // The built-in mock provider's model is free, not unknown.
    assert.equal(table.costMicros('mock-1', usage(10, 10)), 0);
  });
});
