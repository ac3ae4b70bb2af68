/**
 * A consumer project with the built package installed as others get it:
 * what `files` in package.json ships (bin, dist, package.json) under
 * node_modules/switchyard (npm test builds dist first), its dependencies
 * linked from this checkout.
 */
import { cpSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { tempDir } from './gateway.ts';

const ROOT = resolve(import.meta.dirname, '../..');

/** The consumer project's directory (an ES module package). */
export function installBuiltPackage(prefix: string): string {
  const consumer = tempDir(prefix);
  const installed = join(consumer, 'node_modules', 'switchyard');
  mkdirSync(installed, { recursive: true });
  for (const part of ['bin', 'dist', 'package.json'])
    cpSync(join(ROOT, part), join(installed, part), { recursive: true });
  symlinkSync(join(ROOT, 'node_modules'), join(installed, 'node_modules'));
  writeFileSync(join(consumer, 'package.json'), '{"type":"module"}');
  return consumer;
}
