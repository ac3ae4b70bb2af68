/**
 * Key material helpers: the digest comparison auth makes on every request is
 * exact (equal only when every character is), whatever position differs.
 */
import assert from 'node:assert/strict';
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { describe, it } from 'node:test';
import { digestsEqual, hashSecret } from '../../src/auth/secrets.ts';

describe('digestsEqual', () => {
  const digest = hashSecret('sk-sy-example-secret');

  it('is true for the same digest, as a separate string', () => {
    assert.equal(digestsEqual(digest, hashSecret('sk-sy-example-secret')), true);
  });

  it('is false when any one character differs, first to last', () => {
    for (let i = 0; i < digest.length; i++) {
      const other = digest.slice(0, i) + (digest[i] === '0' ? '1' : '0') + digest.slice(i + 1);
      assert.equal(digestsEqual(digest, other), false, `differs at ${i}`);
      assert.equal(digestsEqual(other, digest), false, `differs at ${i}, swapped`);
    }
  });

  it('is false for different lengths, a prefix and the empty string', () => {
    assert.equal(digestsEqual(digest, digest.slice(0, 63)), false);
    assert.equal(digestsEqual(digest, `${digest}0`), false);
    assert.equal(digestsEqual(digest, ''), false);
    assert.equal(digestsEqual('', digest), false);
  });

  it('agrees with timingSafeEqual on the bytes, for random digests and near misses', () => {
    for (let n = 0; n < 500; n++) {
      const a = randomBytes(32);
      const b = n % 2 === 0 ? Buffer.from(a) : randomBytes(32);
      if (n % 4 === 1) b[n % 32] = a[n % 32]! ^ 1;
      assert.equal(digestsEqual(a.toString('hex'), b.toString('hex')), timingSafeEqual(a, b));
    }
  });
});
