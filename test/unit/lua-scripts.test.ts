/**
 * Every Lua script under src/ states its contract before its code: what each
 * KEYS[i] and ARGV[i] holds, what it returns, and why it must be atomic; the
 * key count in its file name matches the keys it uses and documents; and the
 * loader finds it.
 */
import assert from 'node:assert/strict';
import { globSync, readFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { describe, test } from 'node:test';
import { luaScript } from '../../src/store/redis-scripts.ts';

const SRC = resolve(import.meta.dirname, '../../src');
const files = globSync('**/*.lua', { cwd: SRC }).sort();

/** Distinct indexes of `KEYS[i]` or `ARGV[i]` in `text`. */
function indexes(text: string, table: 'KEYS' | 'ARGV'): number[] {
  const found = new Set<number>();
  for (const match of text.matchAll(new RegExp(`${table}\\[(\\d+)\\]`, 'g'))) found.add(Number(match[1]));
  return [...found].sort((a, b) => a - b);
}

describe('Lua scripts', () => {
  test('there are some (the checks cannot pass by reading nothing)', () => {
    assert.ok(files.length >= 4, files.join(', '));
  });

  for (const file of files) {
    test(file, () => {
      const text = readFileSync(join(SRC, file), 'utf8');
      const header = /^--\[\[\n([\s\S]*?)\n\]\]\n/.exec(text);
      assert.ok(header, 'opens with a --[[ ... ]] header block');
      const contract = header[1]!;
      const code = text.slice(header[0].length);
      const name = basename(file, '.lua');
      const declared = Number(/-(\d+)$/.exec(name)?.[1]);
      assert.ok(Number.isInteger(declared), 'the file name ends in -<number of keys>');

      const keysUsed = indexes(code, 'KEYS');
      const keysDocumented = indexes(contract, 'KEYS');
      const expected = Array.from({ length: declared }, (_, i) => i + 1);
      assert.deepEqual(keysDocumented, expected, 'the header documents KEYS[1..n], n from the file name');
      assert.ok(
        keysUsed.every((i) => i <= declared),
        `uses KEYS beyond the ${declared} it declares: ${keysUsed}`,
      );
      for (const i of indexes(code, 'ARGV')) {
        assert.match(contract, new RegExp(`ARGV\\[${i}\\]\\s+\\S`), `ARGV[${i}] is used but not documented`);
      }
      for (const i of indexes(contract, 'ARGV')) {
        assert.match(code, new RegExp(`ARGV\\[${i}\\]`), `ARGV[${i}] is documented but never used`);
      }
      assert.match(contract, /^\s+Output:\n\s+\S/m, 'says what it returns');
      assert.match(contract, /^\s+Atomic because /m, 'says why it is one script');

      const loaded = luaScript(name);
      assert.equal(loaded.numberOfKeys, declared);
      assert.equal(loaded.lua, text);
    });
  }
});
