/**
 * The node flags the gateway ships with (V8's heap sizing and tiering, see the
 * comment in bin/switchyard.js) are written in three places: the
 * `switchyard` shebang, `npm start` and the image's ENTRYPOINT. They must be
 * the same set, and this Node must accept every one of them (an unknown flag
 * stops node before the gateway starts).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ROOT } from '../helpers/gateway.ts';

function shebangFlags(): string[] {
  const first = readFileSync(join(ROOT, 'bin', 'switchyard.js'), 'utf8').split('\n')[0]!;
  const match = /^#!\/usr\/bin\/env -S node((?: --[\w-]+(?:=\S+)?)*)$/.exec(first);
  assert.ok(match, `shebang: ${first}`);
  return match[1]!.trim().split(' ');
}

function npmStartFlags(): string[] {
  const start = (
    JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: { start: string } }
  ).scripts.start;
  const match = /(?:^|&& )node((?: --[\w-]+(?:=\S+)?)*) bin\/switchyard\.js start$/.exec(start);
  assert.ok(match, `npm start: ${start}`);
  return match[1]!.trim().split(' ');
}

function entrypointFlags(): string[] {
  const line = readFileSync(join(ROOT, 'deploy', 'Dockerfile'), 'utf8')
    .split('\n')
    .find((l) => l.startsWith('ENTRYPOINT '));
  assert.ok(line, 'an ENTRYPOINT');
  const argv = JSON.parse(line.slice('ENTRYPOINT '.length)) as string[];
  assert.equal(argv[0], 'node');
  assert.equal(argv.at(-1), 'bin/switchyard.js');
  return argv.slice(1, -1);
}

describe('node flags the gateway ships with', () => {
  it('are the same in the shebang, npm start and the image', () => {
    const flags = shebangFlags();
    assert.deepEqual(npmStartFlags(), flags);
    assert.deepEqual(entrypointFlags(), flags);
    // Measured choices (bin/switchyard.js says why): dropping one silently would undo them.
    for (const flag of [
      '--max-semi-space-size=4',
      '--heap-growing-percent=50',
      '--no-maglev',
      '--no-allocation-site-pretenuring',
    ]) {
      assert.ok(flags.includes(flag), flag);
    }
  });

  it('are all accepted by this Node', () => {
    const run = spawnSync(process.execPath, [...shebangFlags(), '-e', 'process.exit(0)'], {
      encoding: 'utf8',
    });
    assert.equal(run.stderr, '');
    assert.equal(run.status, 0);
    const bad = spawnSync(process.execPath, ['--no-such-v8-flag-anywhere', '-e', 'process.exit(0)'], {
      encoding: 'utf8',
    });
    assert.notEqual(bad.status, 0, 'an unknown flag is refused, so the check above means something');
  });
});
