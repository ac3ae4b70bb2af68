#!/usr/bin/env -S node --max-semi-space-size=4 --heap-growing-percent=50 --no-maglev --no-allocation-site-pretenuring
// Entry point. Runs the build (dist/, plain JavaScript) when it is there and
// up to date, else the TypeScript sources directly (Node 24 type stripping).
// The build saves the type stripper's memory in every thread and is what an
// installed package has; the fallback keeps a source checkout always current.
// V8's heap sizing, measured under a c=50 flood on Node 24 (npm start uses the
// same flags): with 8 MB semi-spaces and V8's own growth policy the old
// generation grew to ~3x its ~30 MB of live objects before a full GC, for a
// peak RSS of ~245 MB. --max-semi-space-size=4 (MB) and
// --heap-growing-percent=50 (the old generation grows to 1.5x live) bring the
// peak to ~143 MB; at 100% (2x live) it was ~158 MB, 1.46-1.53x the
// pass-through in compare.sh, on its 1.5x aim, for the same CPU per request
// within noise (99-103 us either way in interleaved runs). 8 MB semi-spaces:
// ~8 MB more peak RSS and no CPU saving those runs could see. At 20% growth
// V8 marks nearly all the time and every write pays the marking barrier
// (+30% CPU). --no-maglev: V8's middle
// compiler tier, whose code and compile zones cost ~6 MB of peak RSS
// here for no measurable throughput (TurboFan still optimizes the hot path).
// --no-allocation-site-pretenuring: under a flood, requests are in flight
// across scavenges, so V8 sees the objects of their allocation sites survive
// and starts allocating those sites' objects straight in the old generation
// (pretenuring); they still die with their request, but only a full mark-compact
// can free them, and the decision outlives the flood. Off, c=50 cost 116.5
// against 136.4 us of CPU a request (4 interleaved rounds), at 200 rps no
// mark-compact ran in 8 s against 3 (4-13 ms pauses each), same peak RSS.
import { existsSync, readdirSync, statSync } from 'node:fs';

const major = Number(process.versions.node.split('.')[0]);
if (major < 24) {
  process.stderr.write(
    `switchyard needs Node 24 or newer (found ${process.version}). ` +
      'npm install provides it: run through npm (npm start, npx switchyard).\n',
  );
  process.exit(1);
}

const built = new URL('../dist/cli.js', import.meta.url);
const sources = new URL('../src/', import.meta.url);

/** Newest modification time of any file under `dir` (a source checkout has ~150). */
function newestMtime(dir) {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) newest = Math.max(newest, statSync(`${entry.parentPath}/${entry.name}`).mtimeMs);
  }
  return newest;
}

const useBuild =
  existsSync(built) && (!existsSync(sources) || newestMtime(sources) <= statSync(built).mtimeMs);
await import(useBuild ? '../dist/cli.js' : '../src/cli.ts');
