/**
 * The habits a command line is expected to have: help on `--help`, `-h` and
 * `help` (exit 0), `--version`, every config problem listed at once (a bad
 * provider type no longer hides a model pointing at a provider that does not
 * exist), "did you mean" for mistyped commands, actions, sources and options,
 * and `import litellm`'s own usage errors.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, test } from 'node:test';
import { ConfigError, validateConfig } from '../../src/config/load.ts';
import { editDistance, nearestWord } from '../../src/util/nearest-word.ts';
import { runSwitchyard } from '../fixtures/ops/proc.ts';
import { ROOT, tempDir, writeConfig } from '../helpers/gateway.ts';

const FIXTURE = resolve(import.meta.dirname, '../fixtures/litellm/simple-list.yaml');

describe('help and version', () => {
  for (const args of [['--help'], ['-h'], ['help'], ['start', '--help'], ['keys', '-h']]) {
    test(`switchyard ${args.join(' ')}: usage, exit 0`, async () => {
      const result = await runSwitchyard(args);
      assert.equal(result.code, 0, result.stderr);
      assert.equal(result.startedServing, false);
      assert.match(result.stderr, /^Usage:\n {2}switchyard start/);
      assert.match(result.stderr, /switchyard import litellm PATH \[--out FILE\]/);
    });
  }

  test('--version prints the package version on stdout, exit 0', async () => {
    const { version } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
    for (const args of [['--version'], ['version']]) {
      const result = await runSwitchyard(args);
      assert.equal(result.code, 0, result.stderr);
      assert.equal(result.stdout, `switchyard ${version}\n`);
    }
  });
});

describe('check-config lists every problem at once', () => {
  test('three mistakes, three lines: a bad provider type no longer hides the unknown provider', async () => {
    const file = writeConfig({
      providers: {
        main: { type: 'openia', api_key: 'sk-x' },
        local: { type: 'openai', base_url: 'not a url' },
      },
      models: {
        chat: { targets: [{ provider: 'main', model: 'gpt-4o' }] },
        other: { targets: [{ provider: 'nowhere', model: 'gpt-4o' }] },
      },
    });
    const result = await runSwitchyard(['check-config', '--config', file]);
    assert.equal(result.code, 2, result.stderr);
    const lines = result.stderr.split('\n').filter((l) => l.startsWith('config error: '));
    assert.equal(lines.length, 3, result.stderr);
    assert.match(lines[0]!, /^config error: providers\.main\.type: expected type to be one of: openai, /);
    assert.equal(lines[1], 'config error: providers.local.base_url: expected a URL');
    assert.equal(lines[2], "config error: models.other.targets.0.provider: unknown provider 'nowhere'");
    // `main` exists, only invalid: the model using it is not reported as pointing nowhere.
    assert.doesNotMatch(result.stderr, /unknown provider 'main'/);
  });

  test('an invalid model is reported once; groups naming it are not told it does not exist', () => {
    assert.throws(
      () =>
        validateConfig({
          providers: { mock: { type: 'mock' } },
          models: {
            broken: { strategy: 'random', targets: [{ provider: 'mock', model: 'm' }] },
            front: { targets: [{ group: 'broken' }, { group: 'missing' }] },
          },
          limits: { models: { ghost: { requests_per_minute: 5 } } },
        }),
      (error: unknown) => {
        assert.ok(error instanceof ConfigError);
        assert.deepEqual(
          error.problems.map((p) => p.split(':')[0]),
          ['models.broken.strategy', 'models.front.targets.1.group', 'limits.models.ghost'],
        );
        return true;
      },
    );
  });

  test('a section that does not parse silences the checks that read it', () => {
    assert.throws(
      () =>
        validateConfig({
          storage: { redis_url: 'http://not-redis' },
          jobs: { backend: 'redis' },
          providers: { mock: { type: 'mock' } },
          models: { m: { targets: [{ provider: 'mock', model: 'm' }] } },
        }),
      (error: unknown) => {
        assert.ok(error instanceof ConfigError);
        assert.deepEqual(error.problems, ['storage.redis_url: expected a redis:// or rediss:// URL']);
        return true;
      },
    );
  });
});

describe('did you mean', () => {
  const cases: [string[], RegExp | null][] = [
    [['strat'], /^unknown command: strat\ndid you mean 'start'\?$/m],
    [['chek-config'], /^unknown command: chek-config\ndid you mean 'check-config'\?$/m],
    [['wroker'], /^did you mean 'worker'\?$/m],
    [['keys', 'lst'], /^unknown keys action: lst\ndid you mean 'list'\?$/m],
    [['check-config', '--confg', 'x.yaml'], /^did you mean '--config'\?$/m],
    [['import', 'litelm', 'x.yaml'], /^unknown import source: litelm\ndid you mean 'litellm'\?$/m],
    [['frobnicate'], null],
  ];
  for (const [args, expected] of cases) {
    test(`switchyard ${args.join(' ')}: exit 2${expected ? ' with a suggestion' : ', no suggestion'}`, async () => {
      const result = await runSwitchyard(args);
      assert.equal(result.code, 2, result.stderr);
      assert.equal(result.startedServing, false);
      if (expected) assert.match(result.stderr, expected);
      else assert.doesNotMatch(result.stderr, /did you mean/);
      assert.match(result.stderr, /^Usage:/m);
    });
  }

  test('nearestWord: typos within reach, other words not', () => {
    assert.equal(editDistance('kitten', 'sitting'), 3);
    assert.equal(nearestWord('strat', ['start', 'worker']), 'start');
    assert.equal(nearestWord('START', ['start']), 'start');
    assert.equal(nearestWord('deploy', ['start', 'worker', 'keys']), undefined);
  });
});

describe('import litellm from the command line', () => {
  test('without --out: the config on stdout, the report on stderr', async () => {
    const result = await runSwitchyard(['import', 'litellm', FIXTURE]);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /^# Switchyard config imported from /);
    assert.match(result.stdout, /^models:$/m);
    assert.match(result.stderr, /^translated\s+model_list\[0\]\.litellm_params\.model: gpt-4o-mini/m);
    assert.doesNotMatch(result.stdout, /translated/);
  });

  test('--out refuses to overwrite a file unless --force', async () => {
    const out = join(tempDir(), 'switchyard.yaml');
    writeFileSync(out, 'keep me\n');
    const refused = await runSwitchyard(['import', 'litellm', FIXTURE, '--out', out]);
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, /exists; --force to overwrite it/);
    assert.equal(readFileSync(out, 'utf8'), 'keep me\n');
    const forced = await runSwitchyard(['import', 'litellm', FIXTURE, '--out', out, '--force']);
    assert.equal(forced.code, 0, forced.stderr);
    assert.match(readFileSync(out, 'utf8'), /^providers:$/m);
  });

  test('usage errors: no source, no path, a missing file, not a LiteLLM config', async () => {
    const notLiteLLM = join(tempDir(), 'config.yaml');
    writeFileSync(notLiteLLM, 'providers: {}\n');
    const broken = join(tempDir(), 'broken.yaml');
    writeFileSync(broken, 'model_list: [\n');
    const cases: [string[], RegExp][] = [
      [['import'], /import needs a source/],
      [['import', 'litellm'], /needs the path of a LiteLLM config/],
      [['import', 'litellm', '/nonexistent/litellm.yaml'], /file not found/],
      [['import', 'litellm', notLiteLLM], /model_list \(a list of deployments\) is missing/],
      [['import', 'litellm', broken], /broken\.yaml: /],
    ];
    for (const [args, message] of cases) {
      const result = await runSwitchyard(args);
      assert.equal(result.code, 2, `${args.join(' ')}: ${result.stderr}`);
      assert.match(result.stderr, message);
      assert.doesNotMatch(result.stderr, /^\s+at /m, 'no stack trace');
    }
    assert.equal(existsSync(join(tempDir(), 'switchyard.yaml')), false);
  });
});
