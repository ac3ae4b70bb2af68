/**
 * `anthropic-beta` lists: parsed from header values as Node gives them
 * (repeated headers joined with ', ', or an array), merged in order, each once.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { forwardedAnthropicHeaders } from '../../src/api/anthropic/anthropic-beta.ts';
import { betaNames } from '../../src/providers/anthropic/index.ts';

describe('anthropic-beta lists', () => {
  test('names are trimmed, empty entries dropped, each kept once in order of first appearance', () => {
    assert.deepEqual(betaNames(' a-1 ,b-2,, a-1 ,c-3 '), ['a-1', 'b-2', 'c-3']);
    assert.deepEqual(betaNames(['x', 'y, x'], undefined, 'z,y'), ['x', 'y', 'z']);
    assert.deepEqual(betaNames(undefined, '', ' , '), []);
  });

  test('only anthropic-beta is forwarded; nothing when it is absent or empty', () => {
    const forwarded = forwardedAnthropicHeaders({
      'anthropic-beta': 'files-api-2025-04-14, files-api-2025-04-14',
      'anthropic-version': '2099-01-01',
      'x-api-key': 'sk-client',
      authorization: 'Bearer sk-client',
    });
    assert.deepEqual(forwarded, { 'anthropic-beta': 'files-api-2025-04-14' });
    assert.equal(forwardedAnthropicHeaders({ 'x-api-key': 'sk-client' }), undefined);
    assert.equal(forwardedAnthropicHeaders({ 'anthropic-beta': ' , ' }), undefined);
  });
});
