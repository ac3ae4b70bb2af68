/**
 * The one token estimate (~4 characters a token, src/core/token-estimate.ts):
 * its functions, the estimates other parts derive from it, and a scan of
 * `src/` that fails when the rule is written inline again somewhere else.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { describe, test } from 'node:test';
import {
  estimateCompletionTokens,
  estimateEmbeddingTokens,
  estimatePromptTokens,
  estimateTextTokens,
  tokensForChars,
} from '../../src/core/token-estimate.ts';
import { readFeatures } from '../../src/routing/request-features.ts';

const SRC = resolve(import.meta.dirname, '../../src');

describe('token estimate', () => {
  test('a token is ~4 characters, rounded up', () => {
    assert.deepEqual(
      [0, 1, 4, 5, 8, 9].map((n) => tokensForChars(n)),
      [0, 1, 1, 2, 2, 3],
    );
    assert.equal(estimateTextTokens('abcdefghi'), 3);
  });

  test('embedding input: per string, one token per number, a token list as its length', () => {
    assert.equal(estimateEmbeddingTokens('abcdefgh'), 2);
    assert.equal(estimateEmbeddingTokens(['abcd', 'e']), 2);
    assert.equal(estimateEmbeddingTokens([7, 8, 9]), 3);
    assert.equal(estimateEmbeddingTokens([[1, 2], [3]]), 3);
  });

  test('prompt and completion estimates follow the same rule', () => {
    // 12 characters of framing per message.
    assert.equal(estimatePromptTokens({ model: 'm', messages: [{ role: 'user', content: 'abcd' }] }), 4);
    assert.equal(estimateCompletionTokens(1, 9), 3);
    assert.equal(estimateCompletionTokens(5, 9), 5, 'at least one token per content chunk');
  });

  test('routing sizes an embedding request with the same estimate', () => {
    const input = ['a longer embedding input', 'short'];
    assert.equal(readFeatures({ model: 'e', input }).promptTokens, estimateEmbeddingTokens(input));
  });

  test('no other file in src/ divides characters by 4 itself', () => {
    const inline = /Math\.ceil\([^()]*\/\s*4\s*\)/;
    const offenders = sourceFiles(SRC)
      .filter((file) => !file.endsWith('core/token-estimate.ts'))
      .filter((file) => inline.test(readFileSync(file, 'utf8')))
      .map((file) => relative(SRC, file));
    assert.deepEqual(offenders, []);
  });
});

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? sourceFiles(path) : path.endsWith('.ts') ? [path] : [];
  });
}
