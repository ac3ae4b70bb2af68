/**
 * The package as others get it: the build (dist/, plain JavaScript) imports
 * from under node_modules (where Node refuses to strip TypeScript types), and
 * the binary runs the build only while it is up to date with the sources.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cpSync, mkdirSync, utimesSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { test } from 'node:test';
import { tempDir } from '../helpers/gateway.ts';
import { installBuiltPackage } from '../helpers/installed-package.ts';
import { testRedisUrl } from '../helpers/services.ts';

const ROOT = resolve(import.meta.dirname, '../..');
const NODE = process.execPath;

test('the built package imports from node_modules, with the library API', () => {
  const consumer = installBuiltPackage('switchyard-consumer-');
  const script = [
    "import { CircuitBreaker, Router, Gateway, withRetry, hedge } from 'switchyard';",
    'const breaker = new CircuitBreaker({ failureThreshold: 2, recoveryTimeoutMs: 1000 });',
    'const answer = await breaker.call(async () => 42);',
    'console.log(JSON.stringify([typeof Router, typeof Gateway, typeof withRetry, typeof hedge, breaker.state, answer]));',
  ].join('\n');
  writeFileSync(join(consumer, 'use.mjs'), script);
  const out = execFileSync(NODE, ['use.mjs'], { cwd: consumer, encoding: 'utf8' });
  assert.deepEqual(JSON.parse(out), ['function', 'function', 'function', 'function', 'closed', 42]);
});

test('the built package finds its Lua scripts: a Redis breaker store works from node_modules', () => {
  const consumer = installBuiltPackage('switchyard-consumer-redis-');
  const prefix = `pkg${randomBytes(4).toString('hex')}:`;
  const script = [
    "import { connectRedis, RedisBreakerStore, RedisKeys } from 'switchyard';",
    'const redis = connectRedis(process.env.TEST_REDIS_URL);',
    'const keys = new RedisKeys(process.env.PREFIX);',
    'const quiet = { warn: () => {}, info: () => {} };',
    'const store = await RedisBreakerStore.start(redis, quiet, { keys });',
    "await store.publish('p/m', { state: 'open', epoch: 5, openUntil: 10 });",
    "const read = await store.read('p/m');",
    "const probes = [await store.acquireProbe('p/m', 5, 1, 60000), await store.acquireProbe('p/m', 5, 1, 60000)];",
    "const stored = await redis.get(keys.breakerState('p/m'));",
    "await redis.del(keys.breakerState('p/m'), keys.breakerProbes('p/m', 5));",
    'await store.close();',
    'redis.disconnect();',
    'console.log(JSON.stringify([read.state, probes, JSON.parse(stored).epoch]));',
  ].join('\n');
  writeFileSync(join(consumer, 'use.mjs'), script);
  const out = execFileSync(NODE, ['use.mjs'], {
    cwd: consumer,
    encoding: 'utf8',
    env: { ...process.env, TEST_REDIS_URL: testRedisUrl(), PREFIX: prefix },
  });
  assert.deepEqual(JSON.parse(out), ['open', [true, false], 5]);
});

test('the binary runs the build when it is up to date, the sources when one is newer', () => {
  const checkout = tempDir('switchyard-bin-');
  cpSync(join(ROOT, 'bin'), join(checkout, 'bin'), { recursive: true });
  mkdirSync(join(checkout, 'dist'));
  mkdirSync(join(checkout, 'src', 'deep'), { recursive: true });
  writeFileSync(join(checkout, 'package.json'), '{"type":"module"}');
  writeFileSync(join(checkout, 'dist', 'cli.js'), "console.log('dist');\n");
  writeFileSync(join(checkout, 'src', 'cli.ts'), "console.log('src');\n");
  writeFileSync(join(checkout, 'src', 'deep', 'other.ts'), 'export {};\n');
  const run = (): string =>
    execFileSync(NODE, [join(checkout, 'bin', 'switchyard.js')], { encoding: 'utf8' }).trim();
  const at = (path: string, seconds: number): void => utimesSync(path, seconds, seconds);

  at(join(checkout, 'src', 'cli.ts'), 1_000);
  at(join(checkout, 'src', 'deep', 'other.ts'), 1_000);
  at(join(checkout, 'dist', 'cli.js'), 2_000);
  assert.equal(run(), 'dist');

  // Any source file edited after the build, however deep: the build is stale.
  at(join(checkout, 'src', 'deep', 'other.ts'), 3_000);
  assert.equal(run(), 'src');

  // An installed package has no sources: the build is all there is.
  const installed = tempDir('switchyard-installed-');
  cpSync(join(checkout, 'bin'), join(installed, 'bin'), { recursive: true });
  cpSync(join(checkout, 'dist'), join(installed, 'dist'), { recursive: true });
  writeFileSync(join(installed, 'package.json'), '{"type":"module"}');
  assert.equal(
    execFileSync(NODE, [join(installed, 'bin', 'switchyard.js')], { encoding: 'utf8' }).trim(),
    'dist',
  );
});
