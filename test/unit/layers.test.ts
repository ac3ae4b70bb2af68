/**
 * The architecture, checked: `src/` is layered, each folder imports only from
 * its own folder and from folders in lower layers, so there is no import
 * cycle between folders and nothing low depends on anything high. The order
 * below is the architecture (README, "How it works"); a new folder must be
 * placed in it. Type-only imports count: they couple as much as any other.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, test } from 'node:test';

const SRC = resolve(import.meta.dirname, '../../src');

/** Bottom first. Folders in one layer may not import each other. */
const LAYERS: string[][] = [
  ['util'],
  ['core'],
  ['config'],
  ['store', 'observability', 'webhooks'],
  ['auth', 'ledger', 'limits', 'jobs'],
  ['providers'],
  ['routing'],
  ['resilience'],
  ['billing', 'cache'],
  ['dispatch'],
  ['api'],
  ['server'],
  ['cli', 'index'],
];

const layerOf = new Map(LAYERS.flatMap((folders, layer) => folders.map((f) => [f, layer] as const)));

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? sourceFiles(path) : path.endsWith('.ts') ? [path] : [];
  });
}

/** `core` for src/core/errors.ts, `cli` for src/cli.ts. */
function folderOf(path: string): string {
  const [first = ''] = relative(SRC, path).split('/');
  return first.replace(/\.ts$/, '');
}

const IMPORT =
  /(?:^|\n)\s*(?:import|export)\b[^'"`;]*?from\s*'(\.[^']+)'|import\(\s*'(\.[^']+)'\s*\)|new URL\(\s*`?'?(\.[^'`$]+)/g;

interface Edge {
  from: string;
  to: string;
  file: string;
  target: string;
}

function edges(): Edge[] {
  const found: Edge[] = [];
  for (const file of sourceFiles(SRC)) {
    const text = readFileSync(file, 'utf8');
    for (const match of text.matchAll(IMPORT)) {
      const spec = match[1] ?? match[2];
      if (spec === undefined) continue;
      const target = resolve(dirname(file), spec);
      const from = folderOf(file);
      const to = folderOf(target);
      if (from !== to) found.push({ from, to, file: relative(SRC, file), target: relative(SRC, target) });
    }
  }
  return found;
}

describe('layers of src/', () => {
  const all = edges();

  test('the graph was read (the check cannot pass by reading nothing)', () => {
    assert.ok(all.length > 100, `only ${all.length} cross-folder imports found`);
    assert.ok(all.some((e) => e.from === 'server' && e.to === 'dispatch'));
  });

  test('every folder has a place in the layer order', () => {
    const folders = new Set(sourceFiles(SRC).map(folderOf));
    const unplaced = [...folders].filter((f) => !layerOf.has(f));
    assert.deepEqual(unplaced, [], 'add these folders to LAYERS');
  });

  test('imports only point down (no cycles, no layer reaching up or sideways)', () => {
    const wrong = all
      .filter((e) => (layerOf.get(e.to) ?? Infinity) >= (layerOf.get(e.from) ?? -1))
      .map((e) => `${e.file} → ${e.target} (${e.from} may not import ${e.to})`);
    assert.deepEqual(wrong, []);
  });
});
