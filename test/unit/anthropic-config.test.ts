import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { ConfigError, loadConfig, validateConfig } from '../../src/config/load.ts';
import { createProvider } from '../../src/providers/registry.ts';

const model = { targets: [{ provider: 'claude', model: 'claude-sonnet-4-5' }] };

test('type anthropic: defaults for base URL, version, headers, pool and max_tokens', async () => {
  const config = validateConfig({ providers: { claude: { type: 'anthropic' } }, models: { claude: model } });
  assert.deepEqual(config.providers['claude'], {
    type: 'anthropic',
    base_url: 'https://api.anthropic.com',
    anthropic_version: '2023-06-01',
    headers: {},
    max_connections: 256,
    default_max_tokens: 4096,
  });
  const provider = createProvider('claude', config.providers['claude']!);
  assert.equal(provider.type, 'anthropic');
  assert.equal(provider.name, 'claude');
  await provider.close();
});

test('type anthropic: wrong values are refused with their path', () => {
  assert.throws(
    () =>
      validateConfig({
        providers: {
          claude: { type: 'anthropic', default_max_tokens: 0, base_url: 'nope', organization: 'x' },
        },
        models: { claude: model },
      }),
    (error: unknown) => {
      assert.ok(error instanceof ConfigError);
      const text = error.problems.join('\n');
      assert.match(text, /providers\.claude\.default_max_tokens/);
      assert.match(text, /providers\.claude\.base_url: expected a URL/);
      assert.match(text, /providers\.claude\.organization: unknown key/);
      return true;
    },
  );
});

test('ANTHROPIC_API_KEY without a config file adds an anthropic provider and Claude models', () => {
  const cwd = mkdtempSync(join(tmpdir(), 'switchyard-anthropic-config-'));
  const { config, notes } = loadConfig({ cwd, env: { ANTHROPIC_API_KEY: 'sk-ant-test-env-key' } });
  assert.deepEqual(config.providers['anthropic'], {
    type: 'anthropic',
    api_key: 'sk-ant-test-env-key',
    base_url: 'https://api.anthropic.com',
    anthropic_version: '2023-06-01',
    headers: {},
    max_connections: 256,
    default_max_tokens: 4096,
  });
  assert.equal(config.models['claude-sonnet-4-5']?.targets[0]?.provider, 'anthropic');
  assert.ok(notes.some((n) => n.includes('ANTHROPIC_API_KEY found')));
  assert.ok(!notes.join('\n').includes('sk-ant-test-env-key'));
});
