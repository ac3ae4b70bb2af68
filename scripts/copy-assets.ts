/**
 * The second half of `npm run build`: tsc emits JavaScript only, so this
 * copies the other files the modules read at run time (the Lua scripts under
 * src/store/lua/, the dashboard's assets, the labelled prompts of
 * src/routing/complexity/data/) to the same place under dist/, where the built modules look
 * for them, and removes copies whose source is gone.
 */
import { copyFileSync, globSync, mkdirSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';

const ROOT = resolve(import.meta.dirname, '..');
// Lua scripts, and the dashboard's page, script and styles (src/server/dashboard/assets/).
const ASSETS = ['**/*.lua', 'server/dashboard/assets/*', 'routing/complexity/data/*.jsonl'];

const wanted = new Set(globSync(ASSETS, { cwd: join(ROOT, 'src') }));
for (const file of globSync(ASSETS, { cwd: join(ROOT, 'dist') })) {
  if (!wanted.has(file)) rmSync(join(ROOT, 'dist', file));
}
for (const file of wanted) {
  const target = join(ROOT, 'dist', file);
  mkdirSync(dirname(target), { recursive: true });
  copyFileSync(join(ROOT, 'src', file), target);
}
