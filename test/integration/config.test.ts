/**
 * Configuration as users meet it: every invalid config is refused by both
 * `switchyard check-config` and `switchyard start` with exit code 2, no stack
 * trace, and one line per problem naming its path; `${VAR}` interpolation and
 * the no-config defaults, in process through `loadConfig`.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { ConfigError, loadConfig } from '../../src/config/load.ts';
import { type CliResult, runSwitchyard } from '../fixtures/ops/proc.ts';
import { registerSecret, tempDir } from '../helpers/gateway.ts';

/** Writes `text` verbatim (YAML, possibly broken) and returns its path. */
function yamlFile(text: string, name = 'switchyard.yaml'): string {
  const path = join(tempDir('switchyard-config-'), name);
  writeFileSync(path, text);
  return path;
}

const MOCK_ONLY = `providers:
  mock: { type: mock }
`;

interface InvalidCase {
  name: string;
  yaml: string;
  /** One entry per expected stderr line: the exact `path: ` prefix and a key phrase of the message. */
  problems: Array<{ path: string; phrase: RegExp }>;
  /** For the YAML syntax case: the line names the file instead of a config path. */
  fileProblem?: boolean;
}

const INVALID: InvalidCase[] = [
  {
    name: 'base_url that is not a URL',
    yaml: `providers:
  local: { type: openai, base_url: "localhost 11434" }
models:
  fast: { targets: [ { provider: local, model: llama3 } ] }
`,
    problems: [{ path: 'providers.local.base_url', phrase: /^expected a URL$/ }],
  },
  {
    name: 'unknown provider type',
    yaml: `providers:
  local: { type: llamafile }
models:
  fast: { targets: [ { provider: local, model: llama3 } ] }
`,
    problems: [
      {
        path: 'providers.local.type',
        phrase:
          /one of: openai, anthropic, mock, gemini, azure, ollama, vllm, groq, together, mistral, deepseek, openrouter$/,
      },
    ],
  },
  {
    name: 'model target naming a provider that does not exist',
    yaml: `${MOCK_ONLY}models:
  fast: { targets: [ { provider: nope, model: x } ] }
`,
    problems: [{ path: 'models.fast.targets.0.provider', phrase: /^unknown provider 'nope'$/ }],
  },
  {
    name: 'unknown key (typo: retires)',
    yaml: `${MOCK_ONLY}models:
  fast:
    retires: { max: 2 }
    targets: [ { provider: mock, model: mock-1 } ]
`,
    problems: [{ path: 'models.fast.retires', phrase: /^unknown key/ }],
  },
  {
    name: 'Redis prefix with a space and no trailing colon',
    yaml: `storage: { redis_prefix: "acme prod" }
${MOCK_ONLY}models:
  fast: { targets: [ { provider: mock, model: mock-1 } ] }
`,
    problems: [
      {
        path: 'storage.redis_prefix',
        phrase: /^expected 1-64 printable characters without spaces, ending in ':'/,
      },
    ],
  },
  {
    name: 'wrong type: port as a string',
    yaml: `server: { port: "abc" }
${MOCK_ONLY}models:
  fast: { targets: [ { provider: mock, model: mock-1 } ] }
`,
    problems: [{ path: 'server.port', phrase: /^expected (a )?number/ }],
  },
  {
    // A negative number of milliseconds is still "a number of milliseconds":
    // the message must say what is wrong with it.
    name: 'negative timeout',
    yaml: `${MOCK_ONLY}models:
  fast:
    timeouts: { total_ms: -5 }
    targets: [ { provider: mock, model: mock-1 } ]
`,
    problems: [{ path: 'models.fast.timeouts.total_ms', phrase: /positive|greater than 0/ }],
  },
  {
    name: 'invalid YAML syntax',
    yaml: `server:
  port: 8080
 host: 127.0.0.1
${MOCK_ONLY}`,
    problems: [{ path: '', phrase: /line 3, column 1/ }],
    fileProblem: true,
  },
  {
    name: 'unset env variable inside a longer string',
    yaml: `providers:
  local: { type: openai, base_url: "http://\${SY_TEST_UNSET_HOST}:11434/v1" }
models:
  fast: { targets: [ { provider: local, model: llama3 } ] }
`,
    problems: [
      {
        path: 'providers.local.base_url',
        phrase: /^environment variable SY_TEST_UNSET_HOST is not set$/,
      },
    ],
  },
  {
    name: 'empty targets list',
    yaml: `${MOCK_ONLY}models:
  fast: { targets: [] }
`,
    problems: [{ path: 'models.fast.targets', phrase: /^expected at least one target$/ }],
  },
  {
    name: 'sample master key sk-1234 (too short)',
    yaml: `master_key: sk-1234
${MOCK_ONLY}models:
  mock: { targets: [ { provider: mock, model: mock-1 } ] }
`,
    problems: [{ path: 'master_key', phrase: /at least 16 characters/ }],
  },
  {
    name: 'documented sample master key of full length',
    yaml: `master_key: sk-1234567890abcdef
${MOCK_ONLY}models:
  mock: { targets: [ { provider: mock, model: mock-1 } ] }
`,
    problems: [{ path: 'master_key', phrase: /sample key/ }],
  },
  {
    // "expected record" is Zod's vocabulary; a user needs to hear that the section is missing.
    name: 'missing models section',
    yaml: MOCK_ONLY,
    problems: [{ path: 'models', phrase: /required|missing/ }],
  },
  {
    name: 'two problems print two lines',
    yaml: `server: { port: "abc" }
providers:
  local: { type: openai, base_url: "not a url" }
models:
  fast: { targets: [ { provider: local, model: llama3 } ] }
`,
    problems: [
      { path: 'server.port', phrase: /^expected (a )?number/ },
      { path: 'providers.local.base_url', phrase: /^expected a URL$/ },
    ],
  },
  {
    name: 'two unknown providers in one model',
    yaml: `${MOCK_ONLY}models:
  fast: { targets: [ { provider: nope, model: x }, { provider: mock, model: y }, { provider: gone, model: z } ] }
`,
    problems: [
      { path: 'models.fast.targets.0.provider', phrase: /^unknown provider 'nope'$/ },
      { path: 'models.fast.targets.2.provider', phrase: /^unknown provider 'gone'$/ },
    ],
  },
];

/** The problem part of each stderr line (after the `config error: ` label). */
function problemLines(result: CliResult): string[] {
  return result.stderr
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => line.replace(/^config error: /, ''));
}

function assertRefused(result: CliResult, c: InvalidCase, file: string, command: string): void {
  const context = `${command} — stderr:\n${result.stderr}`;
  assert.equal(result.startedServing, false, `started serving despite an invalid config: ${context}`);
  assert.equal(result.code, 2, `exit code: ${context}`);
  assert.doesNotMatch(result.stderr, /^\s+at /m, `stack trace on stderr: ${context}`);
  assert.doesNotMatch(result.stderr, /Error:|ZodError|\[\s*\{/, `raw error object on stderr: ${context}`);
  assert.equal(result.stdout, '', `stdout should stay empty: ${command}`);
  const lines = problemLines(result);
  assert.equal(lines.length, c.problems.length, `one line per problem: ${context}`);
  c.problems.forEach((expected, i) => {
    const line = lines[i]!;
    const prefix = c.fileProblem ? `${file}: ` : `${expected.path}: `;
    assert.ok(line.startsWith(prefix), `line ${i} should start with "${prefix}": ${context}`);
    assert.match(line.slice(prefix.length), expected.phrase, `line ${i} message: ${context}`);
  });
}

describe('invalid configs are refused by check-config and start', () => {
  for (const c of INVALID) {
    test(c.name, async () => {
      const file = yamlFile(c.yaml);
      const [check, start] = await Promise.all([
        runSwitchyard(['check-config', '--config', file]),
        runSwitchyard(['start', '--config', file]),
      ]);
      assertRefused(check, c, file, 'check-config');
      assertRefused(start, c, file, 'start');
    });
  }

  test('a config file that does not exist', async () => {
    const missing = join(tempDir('switchyard-config-'), 'nope.yaml');
    for (const command of ['check-config', 'start']) {
      const result = await runSwitchyard([command, '--config', missing], { env: { PORT: '0' } });
      assert.equal(result.code, 2, result.stderr);
      assert.equal(result.startedServing, false);
      assert.doesNotMatch(result.stderr, /^\s+at /m);
      assert.deepEqual(problemLines(result), [`config file not found: ${missing}`]);
    }
  });
});

describe('env variable interpolation (loadConfig in process)', () => {
  const file = yamlFile(`server:
  port: \${SY_PORT:-9123}
  host: \${SY_HOST}
master_key: \${SY_MASTER}
providers:
  local:
    type: openai
    base_url: "http://\${SY_UPSTREAM_HOST}:\${SY_UPSTREAM_PORT:-11434}/v1"
    api_key: \${SY_LOCAL_KEY}
  mock: { type: mock, reply: "\${SY_REPLY}" }
models:
  fast: { targets: [ { provider: local, model: "\${SY_MODEL:-llama3}" } ] }
`);

  test('values come from the environment; defaults apply; numbers stay numbers', () => {
    const apiKey = `sk-local-${'x'.repeat(24)}`;
    const master = `sk-sy-master-interp-${'y'.repeat(20)}`;
    registerSecret(apiKey);
    registerSecret(master);
    const { config, source } = loadConfig({
      path: file,
      env: {
        SY_UPSTREAM_HOST: '10.1.2.3',
        SY_LOCAL_KEY: apiKey,
        SY_MASTER: master,
        SY_HOST: '127.0.0.2',
        SY_REPLY: 'a: b\n- [c]',
      },
    });
    assert.equal(source, file);
    assert.equal(config.server.port, 9123, 'default used and coerced to a number');
    assert.equal(config.server.host, '127.0.0.2');
    assert.equal(config.master_key, master);
    const local = config.providers['local'];
    assert.equal(local?.type, 'openai');
    assert.equal(local.type === 'openai' && local.base_url, 'http://10.1.2.3:11434/v1');
    assert.equal(local.type === 'openai' && local.api_key, apiKey);
    assert.equal(config.models['fast']?.targets[0]?.model, 'llama3');
    // Interpolation happens after parsing: an env value cannot inject YAML structure.
    const mock = config.providers['mock'];
    assert.equal(mock?.type === 'mock' && mock.reply, 'a: b\n- [c]');
  });

  test('a set variable overrides its default', () => {
    const { config } = loadConfig({
      path: file,
      env: { SY_PORT: '8181', SY_UPSTREAM_HOST: 'gpu-box', SY_UPSTREAM_PORT: '8000', SY_MODEL: 'qwen' },
    });
    assert.equal(config.server.port, 8181);
    const local = config.providers['local'];
    assert.equal(local?.type === 'openai' && local.base_url, 'http://gpu-box:8000/v1');
    assert.equal(config.models['fast']?.targets[0]?.model, 'qwen');
  });

  test('a whole-value unset variable leaves the optional field absent', () => {
    const { config } = loadConfig({ path: file, env: { SY_UPSTREAM_HOST: 'h' } });
    const local = config.providers['local'];
    assert.equal(local?.type, 'openai');
    assert.equal(Object.hasOwn(local, 'api_key'), false, 'api_key absent, not empty');
    assert.equal(Object.hasOwn(config, 'master_key'), false, 'master_key absent');
    // An absent host falls back to the schema default (loopback).
    assert.equal(config.server.host, '127.0.0.1');
  });

  test('an unset variable inside a longer string is a ConfigError naming the path', () => {
    assert.throws(
      () => loadConfig({ path: file, env: {} }),
      (error: unknown) => {
        assert.ok(error instanceof ConfigError);
        assert.deepEqual(error.problems, [
          'providers.local.base_url: environment variable SY_UPSTREAM_HOST is not set',
        ]);
        return true;
      },
    );
  });

  test('an empty variable counts as unset', () => {
    const { config } = loadConfig({ path: file, env: { SY_UPSTREAM_HOST: 'h', SY_PORT: '' } });
    assert.equal(config.server.port, 9123);
  });

  test('PORT and DATABASE_URL from the environment win over the file', () => {
    const { config } = loadConfig({
      path: file,
      env: { SY_UPSTREAM_HOST: 'h', PORT: '7000', DATABASE_URL: 'sqlite:/tmp/x.db' },
    });
    assert.equal(config.server.port, 7000);
    assert.equal(config.storage.database_url, 'sqlite:/tmp/x.db');
  });
});

describe('finding the config file', () => {
  const body = (model: string) => `${MOCK_ONLY}models:
  ${model}: { targets: [ { provider: mock, model: mock-1 } ] }
`;

  test('no config at all: the built-in mock provider and a mock model', () => {
    const cwd = tempDir('switchyard-noconfig-');
    const loaded = loadConfig({ cwd, env: {} });
    assert.equal(loaded.source, null);
    assert.deepEqual(Object.keys(loaded.config.providers), ['mock']);
    assert.equal(loaded.config.providers['mock']?.type, 'mock');
    assert.deepEqual(Object.keys(loaded.config.models), ['mock']);
    assert.deepEqual(
      loaded.config.models['mock']?.targets.map((t) => t.provider),
      ['mock'],
    );
    assert.ok(
      loaded.notes.some((n) => /no config file/.test(n)),
      `says so: ${loaded.notes.join(' | ')}`,
    );
  });

  test('no config, OPENAI_API_KEY in the environment: openai models are added', () => {
    const cwd = tempDir('switchyard-noconfig-');
    const apiKey = `sk-proj-test-${'z'.repeat(30)}`;
    registerSecret(apiKey);
    const loaded = loadConfig({ cwd, env: { OPENAI_API_KEY: apiKey } });
    assert.equal(loaded.source, null);
    const openai = loaded.config.providers['openai'];
    assert.equal(openai?.type, 'openai');
    assert.equal(openai.type === 'openai' && openai.api_key, apiKey);
    assert.equal(loaded.config.providers['mock']?.type, 'mock', 'mock stays available');
    assert.ok(Object.hasOwn(loaded.config.models, 'mock'));
    for (const model of ['gpt-4o-mini', 'text-embedding-3-small']) {
      assert.deepEqual(
        loaded.config.models[model]?.targets.map((t) => [t.provider, t.model]),
        [['openai', model]],
        model,
      );
    }
    assert.ok(loaded.notes.some((n) => /OPENAI_API_KEY/.test(n)));
    assert.ok(!loaded.notes.some((n) => n.includes(apiKey)), 'notes never show the key');
  });

  test('./switchyard.yaml in the cwd is used; SWITCHYARD_CONFIG beats it; --config beats both', () => {
    const cwd = tempDir('switchyard-find-');
    writeFileSync(join(cwd, 'switchyard.yaml'), body('from_cwd'));
    const viaEnv = yamlFile(body('from_env'));
    const viaFlag = yamlFile(body('from_flag'));
    assert.deepEqual(Object.keys(loadConfig({ cwd, env: {} }).config.models), ['from_cwd']);
    assert.deepEqual(Object.keys(loadConfig({ cwd, env: { SWITCHYARD_CONFIG: viaEnv } }).config.models), [
      'from_env',
    ]);
    assert.deepEqual(
      Object.keys(loadConfig({ cwd, path: viaFlag, env: { SWITCHYARD_CONFIG: viaEnv } }).config.models),
      ['from_flag'],
    );
  });
});
