/**
 * The per-connection credential digests (auth/token-digests.ts): always the
 * digest of the token presented, never a remembered one for a different token,
 * and the remembered-token check exact for any difference in content or length.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { hashSecret } from '../../src/auth/secrets.ts';
import { sameText, TokenDigests } from '../../src/auth/token-digests.ts';

describe('TokenDigests', () => {
  it('gives the SHA-256 of the token presented, remembered or not, as tokens alternate', () => {
    const digests = new TokenDigests();
    const a = `sk-sy-${randomBytes(32).toString('base64url')}`;
    const b = `sk-sy-${randomBytes(32).toString('base64url')}`;
    const nearA = a.slice(0, -1) + (a.endsWith('A') ? 'B' : 'A');
    for (const token of [a, a, b, a, nearA, nearA, a, `${a}x`, a.slice(0, -1), b, b]) {
      assert.equal(digests.digest(token), hashSecret(token), token);
    }
  });
});

describe('sameText', () => {
  const known = 'sk-sy-example-credential-0123456789';

  it('is true only for an equal string', () => {
    assert.equal(sameText(known, `${known}`), true);
    assert.equal(sameText(known, known.slice(0)), true);
  });

  it('is false when any one character differs, first to last', () => {
    for (let i = 0; i < known.length; i++) {
      const other = known.slice(0, i) + (known[i] === 'x' ? 'y' : 'x') + known.slice(i + 1);
      assert.equal(sameText(known, other), false, `differs at ${i}`);
    }
  });

  it('is false for prefixes, extensions, repetitions and the empty string', () => {
    assert.equal(sameText(known, known.slice(0, -1)), false);
    assert.equal(sameText(known, `${known}x`), false);
    // Read cyclically, `known` twice over matches character for character: the lengths decide.
    assert.equal(sameText(known, known + known), false);
    assert.equal(sameText(known, ''), false);
    assert.equal(sameText('abc', 'abcabc'), false);
  });
});
