/**
 * The README's library example, run as written against the built package
 * installed under node_modules: dispatch composed from the same steps the
 * gateway uses, around a provider, billing one ledger row.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { test } from 'node:test';
import { installBuiltPackage } from '../helpers/installed-package.ts';

const ROOT = resolve(import.meta.dirname, '../..');

/** The first ```ts block after the `<!-- library-example -->` marker. */
function readmeExample(): string {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const marker = readme.indexOf('<!-- library-example -->');
  assert.ok(marker >= 0, 'the README marks its library example');
  const match = /```ts\n([\s\S]*?)```/.exec(readme.slice(marker));
  assert.ok(match?.[1], 'a ts block follows the marker');
  return match[1];
}

test('the README library example runs and bills one ok row', () => {
  const consumer = installBuiltPackage('switchyard-example-');
  // Outside node_modules Node strips the example's types itself.
  writeFileSync(join(consumer, 'example.ts'), readmeExample());
  const out = execFileSync(process.execPath, ['example.ts'], { cwd: consumer, encoding: 'utf8' });
  assert.match(out.trim(), /^\S.* 1 ok$/, out);
});
