/** The retry wait both job queue backends use (src/jobs/job-backoff.ts). */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MAX_RETRY_DELAY_MS, retryDelayMs } from '../../src/jobs/job-backoff.ts';

test('the wait doubles with each failed attempt, from backoffMs after the first', () => {
  assert.deepEqual(
    [1, 2, 3, 4].map((attempt) => retryDelayMs(1_000, attempt)),
    [1_000, 2_000, 4_000, 8_000],
  );
});

test('no backoff means no wait; the wait is capped, even after very many attempts', () => {
  assert.equal(retryDelayMs(0, 7), 0);
  assert.equal(retryDelayMs(1_000, 30), MAX_RETRY_DELAY_MS);
  assert.equal(retryDelayMs(1_000, 1_000), MAX_RETRY_DELAY_MS);
});
