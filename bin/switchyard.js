#!/usr/bin/env -S node --max-semi-space-size=8
// Entry point. Node 24 runs our TypeScript directly (type stripping).
// --max-semi-space-size=8 (MB): a smaller young generation measured ~40% less
// peak RSS and ~10% more throughput under load (bench/); npm start uses it too.
const major = Number(process.versions.node.split('.')[0]);
if (major < 24) {
  process.stderr.write(
    `switchyard needs Node 24 or newer (found ${process.version}). ` +
      'npm install provides it: run through npm (npm start, npx switchyard).\n',
  );
  process.exit(1);
}
await import('../src/cli.ts');
