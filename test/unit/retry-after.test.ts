import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseRetryAfter } from '../../src/util/retry-after.ts';

const NOW = Date.parse('2026-11-23T10:00:00Z');

test('Retry-After forms', () => {
  assert.equal(parseRetryAfter({ 'retry-after': '2' }, NOW), 2000);
  assert.equal(parseRetryAfter({ 'retry-after': '0.5' }, NOW), 500);
  assert.equal(
    parseRetryAfter({ 'retry-after-ms': '1500', 'retry-after': '9' }, NOW),
    1500,
    'ms header wins',
  );
  assert.equal(parseRetryAfter({ 'retry-after': 'Mon, 23 Nov 2026 10:00:03 GMT' }, NOW), 3000);
  assert.equal(
    parseRetryAfter({ 'retry-after': 'Mon, 23 Nov 2026 09:00:00 GMT' }, NOW),
    0,
    'past date: no wait',
  );
  assert.equal(
    parseRetryAfter({ 'retry-after': '86400' }, NOW),
    86_400_000,
    'huge values are for the caller to cap',
  );
});

test('garbage and negative values are ignored', () => {
  for (const value of ['abc', '-1', '', '1e3', '2 seconds', 'NaN']) {
    assert.equal(parseRetryAfter({ 'retry-after': value }, NOW), undefined, value);
  }
  assert.equal(parseRetryAfter({ 'retry-after-ms': '-5' }, NOW), undefined);
  assert.equal(parseRetryAfter({}, NOW), undefined);
});
