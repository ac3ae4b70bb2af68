/**
 * The LiteLLM config importer's mapping (src/config/litellm-import/): model
 * strings to providers, deployments to targets, routing strategies,
 * fallbacks, retries / timeouts / cooldowns, cache and Redis, general
 * settings, and the report: every setting accounted for, no secret quoted,
 * and the output a config Switchyard accepts.
 */
// biome-ignore-all lint/suspicious/noTemplateCurlyInString: '${NAME}' here is Switchyard's config syntax, not a template
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { importLiteLLMConfig, LiteLLMImportError } from '../../src/config/litellm-import/import-litellm.ts';
import { formatReport, type ImportReportEntry } from '../../src/config/litellm-import/report.ts';
import { loadConfig, validateConfig } from '../../src/config/load.ts';
import { tempDir } from '../helpers/gateway.ts';

// biome-ignore lint/suspicious/noExplicitAny: tests walk the imported config freely; each assertion checks the shape it reads
type Json = Record<string, any>;

function imported(input: Json): { config: Json; report: ImportReportEntry[] } {
  const result = importLiteLLMConfig(input);
  return { config: result.config as Json, report: result.report };
}

function entry(report: ImportReportEntry[], setting: string): ImportReportEntry {
  const found = report.find((e) => e.setting === setting);
  assert.ok(found, `no report entry for ${setting}: ${report.map((e) => e.setting).join(', ')}`);
  return found;
}

/** The YAML as the gateway would load it, with these environment variables. */
function load(yaml: string, env: Record<string, string> = {}) {
  const path = join(tempDir('litellm-import-'), 'switchyard.yaml');
  writeFileSync(path, yaml);
  return loadConfig({ path, env }).config;
}

const deployment = (model_name: string, litellm_params: Json, extra: Json = {}) => ({
  model_name,
  litellm_params,
  ...extra,
});

describe('model strings → providers', () => {
  const cases: [string, Json, Json][] = [
    ['openai/gpt-4o', {}, { type: 'openai', api_key: '${OPENAI_API_KEY}' }],
    ['gpt-4o', {}, { type: 'openai', api_key: '${OPENAI_API_KEY}' }],
    [
      'anthropic/claude-sonnet-4-5',
      { api_base: 'https://proxy.example/v1/messages' },
      { type: 'anthropic', base_url: 'https://proxy.example', api_key: '${ANTHROPIC_API_KEY}' },
    ],
    ['claude-haiku-4-5', {}, { type: 'anthropic', api_key: '${ANTHROPIC_API_KEY}' }],
    ['gemini/gemini-2.5-flash', {}, { type: 'gemini', api_key: '${GEMINI_API_KEY}' }],
    [
      'ollama/llama3.1',
      { api_base: 'http://gpu-box:11434' },
      { type: 'ollama', base_url: 'http://gpu-box:11434/v1' },
    ],
    ['ollama_chat/llama3.1', {}, { type: 'ollama' }],
    [
      'hosted_vllm/Qwen/Qwen2.5',
      { api_base: 'http://vllm:8000/v1/' },
      { type: 'vllm', base_url: 'http://vllm:8000/v1' },
    ],
    ['groq/llama-3.1-8b-instant', {}, { type: 'groq', api_key: '${GROQ_API_KEY}' }],
    ['together_ai/meta-llama/Llama-3-70b', {}, { type: 'together', api_key: '${TOGETHERAI_API_KEY}' }],
    ['openrouter/anthropic/claude-3.5', {}, { type: 'openrouter', api_key: '${OPENROUTER_API_KEY}' }],
    ['xai/grok-3', {}, { type: 'openai', base_url: 'https://api.x.ai/v1', api_key: '${XAI_API_KEY}' }],
    [
      'azure/my-gpt4o',
      {
        api_base: 'https://eu.openai.azure.com/',
        api_key: 'os.environ/AZURE_EU_KEY',
        api_version: '2024-10-21',
      },
      {
        type: 'azure',
        endpoint: 'https://eu.openai.azure.com',
        api_key: '${AZURE_EU_KEY}',
        api_version: '2024-10-21',
      },
    ],
    ['azure/dep', {}, { type: 'azure', endpoint: '${AZURE_API_BASE}', api_key: '${AZURE_API_KEY}' }],
  ];
  for (const [model, params, provider] of cases) {
    test(`${model} ${JSON.stringify(params)}`, () => {
      const { config, report } = imported({ model_list: [deployment('m', { model, ...params })] });
      const providers = Object.values(config['providers']) as Json[];
      assert.equal(providers.length, 1);
      assert.deepEqual(providers[0], provider);
      const target = config['models']['m']['targets'][0];
      assert.equal(
        target.model,
        model.startsWith('azure/') ? model.slice(6) : model.replace(/^[a-z_]+\//, ''),
      );
      assert.equal(entry(report, 'model_list[0].litellm_params.model').outcome, 'translated');
    });
  }

  test('an OpenAI-compatible server under another prefix, with api_base: openai type, approximated', () => {
    const { config, report } = imported({
      model_list: [deployment('m', { model: 'custom_llm/my-model', api_base: 'http://10.0.0.5:9000/v1' })],
    });
    assert.deepEqual(config['providers']['custom_llm'], {
      type: 'openai',
      base_url: 'http://10.0.0.5:9000/v1',
    });
    const line = entry(report, 'model_list[0].litellm_params.model');
    assert.equal(line.outcome, 'approximated');
    assert.match(line.detail, /assumed OpenAI-compatible/);
  });

  test('providers Switchyard does not speak are reported, and their deployments left out', () => {
    const { config, report } = imported({
      model_list: [
        deployment('claude-bedrock', { model: 'bedrock/anthropic.claude-3-5-sonnet' }),
        deployment('mystery', { model: 'my-own-model' }),
        deployment('everything', { model: 'openai/*' }),
        deployment('*', { model: '*' }),
        deployment('gpt', { model: 'openai/gpt-4o' }),
      ],
    });
    assert.deepEqual(Object.keys(config['models']), ['gpt']);
    assert.match(entry(report, 'model_list[0] (claude-bedrock)').detail, /Bedrock/);
    assert.match(entry(report, 'model_list[1] (mystery)').detail, /cannot tell the provider/);
    assert.equal(entry(report, 'model_list[3]').outcome, 'not translated');
  });

  test('deployments sharing endpoint and key share a provider; others get readable names', () => {
    const { config } = imported({
      model_list: [
        deployment('a', {
          model: 'azure/gpt-4o-east',
          api_base: 'https://east.openai.azure.com',
          api_key: 'os.environ/K1',
        }),
        deployment('b', {
          model: 'azure/gpt-4o-mini-east',
          api_base: 'https://east.openai.azure.com',
          api_key: 'os.environ/K1',
        }),
        deployment('a', {
          model: 'azure/gpt-4o-west',
          api_base: 'https://west.openai.azure.com',
          api_key: 'os.environ/K2',
        }),
        deployment('c', { model: 'openai/gpt-4o', api_base: 'os.environ/OPENAI_API_BASE_2' }),
        deployment('c', { model: 'openai/gpt-4o' }),
      ],
    });
    assert.deepEqual(Object.keys(config['providers']), ['azure', 'azure-west', 'openai', 'openai-2']);
    assert.deepEqual(
      config['models']['a']['targets'].map((t: Json) => `${t.provider}/${t.model}`),
      ['azure/gpt-4o-east', 'azure-west/gpt-4o-west'],
    );
  });
});

describe('deployments → targets', () => {
  test('simple-shuffle weighs by weight, else rpm, else tpm; a deployment without it weighs 0 (a backup)', () => {
    const { config, report } = imported({
      model_list: [
        deployment('w', { model: 'openai/a', weight: 3, rpm: 10 }),
        deployment('w', { model: 'openai/b', weight: 1 }),
        deployment('r', { model: 'openai/c', rpm: 600 }),
        deployment('r', { model: 'openai/d', rpm: 200, tpm: 5000 }),
        deployment('z', { model: 'openai/e', rpm: 100 }),
        deployment('z', { model: 'openai/f' }),
      ],
    });
    const targets = (name: string) => config['models'][name]['targets'] as Json[];
    assert.equal(config['models']['w']['strategy'], 'weighted');
    assert.deepEqual(
      targets('w').map((t) => t.weight),
      [3, 1],
    );
    assert.deepEqual(targets('w')[0]?.limits, { rpm: 10 });
    assert.deepEqual(
      targets('r').map((t) => t.weight),
      [600, 200],
    );
    assert.deepEqual(targets('r')[1]?.limits, { rpm: 200, tpm: 5000 });
    assert.equal(targets('z')[1]?.role, 'backup');
    assert.equal(entry(report, 'model_list[5]').outcome, 'approximated');
  });

  test('one deployment: strategy fallback (nothing to balance)', () => {
    const { config } = imported({ model_list: [deployment('solo', { model: 'openai/gpt-4o', weight: 5 })] });
    assert.equal(config['models']['solo']['strategy'], 'fallback');
    assert.equal(config['models']['solo']['targets'][0].weight, undefined);
  });

  test('order: the lowest is primary, the next secondary, later ones backup', () => {
    const { config } = imported({
      model_list: [
        deployment('o', { model: 'openai/a', order: 2 }),
        deployment('o', { model: 'openai/b', order: 1 }),
        deployment('o', { model: 'openai/c', order: 3 }),
      ],
    });
    assert.deepEqual(
      config['models']['o']['targets'].map((t: Json) => t.role ?? 'primary'),
      ['secondary', 'primary', 'backup'],
    );
  });

  test('model_info: context window, capabilities, prices per token → per million', () => {
    const { config } = imported({
      model_list: [
        deployment(
          'm',
          { model: 'openai/gpt-4o', input_cost_per_token: 0.0000025 },
          {
            model_info: {
              max_input_tokens: 128000,
              supports_vision: true,
              supports_function_calling: false,
              output_cost_per_token: 0.00001,
            },
          },
        ),
      ],
    });
    const [target] = config['models']['m']['targets'];
    assert.deepEqual(target, {
      provider: 'openai',
      model: 'gpt-4o',
      input_per_mtok: 2.5,
      context_window: 128000,
      vision: true,
      tools: false,
      output_per_mtok: 10,
    });
  });

  test('Azure base_model: the target carries the real model id, the provider maps it to the deployment', () => {
    const azure = { api_base: 'https://eu.openai.azure.com', api_key: 'os.environ/AZURE_EU_KEY' };
    const { config, report } = imported({
      model_list: [
        deployment(
          'a',
          { model: 'azure/prod-4o', ...azure },
          { model_info: { base_model: 'azure/gpt-4o-2024-08-06' } },
        ),
        deployment(
          'b',
          { model: 'azure/test-4o', ...azure },
          { model_info: { base_model: 'gpt-4o-2024-08-06' } },
        ),
      ],
    });
    assert.deepEqual(config['models']['a']['targets'][0], { provider: 'azure', model: 'gpt-4o-2024-08-06' });
    assert.deepEqual(config['providers']['azure']['deployments'], { 'gpt-4o-2024-08-06': 'prod-4o' });
    // The same endpoint cannot map one model id to two deployments: the second keeps its name.
    assert.deepEqual(config['models']['b']['targets'][0], { provider: 'azure', model: 'test-4o' });
    assert.equal(entry(report, 'model_list[1].model_info.base_model').outcome, 'approximated');
  });

  test('identical deployments become one target with both weights', () => {
    const { config, report } = imported({
      model_list: [
        deployment('m', { model: 'openai/gpt-4o', weight: 2 }),
        deployment('m', { model: 'openai/gpt-4o', weight: 1 }),
        deployment('m', { model: 'openai/gpt-4o-mini', weight: 1 }),
      ],
    });
    assert.deepEqual(
      config['models']['m']['targets'].map((t: Json) => [t.model, t.weight]),
      [
        ['gpt-4o', 3],
        ['gpt-4o-mini', 1],
      ],
    );
    assert.equal(entry(report, 'model_list[1]').outcome, 'approximated');
  });
});

describe('routing strategies', () => {
  const two = [
    deployment('m', { model: 'openai/a', rpm: 100 }),
    deployment('m', { model: 'openai/b', rpm: 300 }),
  ];
  const expected: [string, string, string][] = [
    ['simple-shuffle', 'weighted', 'translated'],
    ['least-busy', 'least-latency', 'approximated'],
    ['usage-based-routing', 'weighted', 'approximated'],
    ['usage-based-routing-v2', 'weighted', 'approximated'],
    ['latency-based-routing', 'least-latency', 'translated'],
    ['cost-based-routing', 'cost', 'translated'],
    ['some-future-strategy', 'weighted', 'approximated'],
  ];
  for (const [litellm, switchyard, outcome] of expected) {
    test(`${litellm} → ${switchyard} (${outcome})`, () => {
      const { config, report } = imported({
        model_list: two,
        router_settings: { routing_strategy: litellm },
      });
      assert.equal(config['models']['m']['strategy'], switchyard);
      assert.equal(entry(report, 'router_settings.routing_strategy').outcome, outcome);
    });
  }

  test('usage-based routing enforces rpm/tpm: the model is capped at the sum of its deployments', () => {
    const { config } = imported({
      model_list: [
        deployment('m', { model: 'openai/a', rpm: 100, tpm: 1000 }),
        deployment('m', { model: 'openai/b', rpm: 300 }),
      ],
      router_settings: { routing_strategy: 'usage-based-routing-v2' },
    });
    assert.deepEqual(config['limits'], { models: { m: { requests_per_minute: 400 } } });
    assert.deepEqual(
      config['models']['m']['targets'].map((t: Json) => t.weight),
      [100, 300],
    );
  });

  test('simple-shuffle without pre-call checks leaves rpm as a soft limit (no model cap)', () => {
    const { config } = imported({ model_list: two });
    assert.equal(config['limits'], undefined);
  });
});

describe('fallbacks, retries, timeouts, cooldowns', () => {
  const list = [
    deployment('gpt-4o', { model: 'openai/gpt-4o' }),
    deployment('gpt-4o', { model: 'azure/gpt-4o', api_base: 'https://x.openai.azure.com' }),
    deployment('claude', { model: 'anthropic/claude-sonnet-4-5' }),
    deployment('gemini', { model: 'gemini/gemini-2.5-flash' }),
  ];

  test('fallbacks: backup group targets in LiteLLM order, kept out of the weighted draw', () => {
    const { config } = imported({
      model_list: list,
      router_settings: { fallbacks: [{ 'gpt-4o': ['claude', 'gemini'] }, { claude: ['gemini'] }] },
    });
    const targets = config['models']['gpt-4o']['targets'] as Json[];
    assert.deepEqual(targets.slice(2), [
      { group: 'claude', role: 'backup', weight: 0.000001 },
      { group: 'gemini', role: 'backup', weight: 0.000001 },
    ]);
    assert.deepEqual(config['models']['claude']['targets'][1], { group: 'gemini', role: 'backup' });
  });

  test('a fallback cycle (A → B, B → A) is inlined rather than refused', () => {
    const { config, report } = imported({
      model_list: list,
      litellm_settings: { fallbacks: [{ 'gpt-4o': ['claude'] }, { claude: ['gpt-4o'] }] },
    });
    assert.deepEqual(config['models']['claude']['targets'].slice(1), [
      { provider: 'openai', model: 'gpt-4o', role: 'backup' },
      { provider: 'azure', model: 'gpt-4o', role: 'backup' },
    ]);
    assert.equal(entry(report, 'litellm_settings.fallbacks.claude').outcome, 'approximated');
    validateConfig(
      load(
        importLiteLLMConfig({
          model_list: list,
          litellm_settings: { fallbacks: [{ 'gpt-4o': ['claude'] }, { claude: ['gpt-4o'] }] },
        }).yaml,
        { GEMINI_API_KEY: 'g', AZURE_API_KEY: 'a' },
      ),
    );
  });

  test('unknown fallback models are reported, default_fallbacks apply to every other model', () => {
    const { config, report } = imported({
      model_list: list,
      router_settings: { fallbacks: [{ 'gpt-4o': ['nope'] }], default_fallbacks: ['gemini'] },
    });
    assert.equal(entry(report, 'router_settings.fallbacks.gpt-4o').outcome, 'not translated');
    assert.deepEqual(config['models']['claude']['targets'][1], { group: 'gemini', role: 'backup' });
    assert.equal(config['models']['gemini']['targets'].length, 1);
  });

  test('num_retries, timeout, stream_timeout, allowed_fails, cooldown_time', () => {
    const { config, report } = imported({
      model_list: [
        deployment('m', { model: 'openai/gpt-4o' }),
        deployment('n', { model: 'openai/x', timeout: 5 }),
      ],
      router_settings: {
        num_retries: 3,
        timeout: 30,
        stream_timeout: 10,
        allowed_fails: 2,
        cooldown_time: 45,
      },
    });
    const model = config['models']['m'];
    assert.deepEqual(model['retries'], { max: 3 });
    assert.deepEqual(model['timeouts'], { total_ms: 30_000, first_byte_ms: 10_000, idle_ms: 10_000 });
    assert.deepEqual(model['circuit_breaker'], {
      failure_threshold: 3,
      window_ms: 60_000,
      recovery_timeout_ms: 45_000,
    });
    // A deployment's own timeout wins for its model.
    assert.deepEqual(config['models']['n']['timeouts'], {
      total_ms: 5000,
      first_byte_ms: 5000,
      idle_ms: 5000,
    });
    assert.equal(entry(report, 'router_settings.num_retries').outcome, 'approximated');
    assert.equal(entry(report, 'router_settings.cooldown_time').outcome, 'translated');
  });

  test('num_retries above Switchyard’s 10 is clamped; disable_cooldowns turns breakers off', () => {
    const { config } = imported({
      model_list: [deployment('m', { model: 'openai/gpt-4o' })],
      litellm_settings: { num_retries: 25 },
      router_settings: { disable_cooldowns: true },
    });
    assert.deepEqual(config['models']['m']['retries'], { max: 10 });
    assert.deepEqual(config['models']['m']['circuit_breaker'], { enabled: false });
  });

  test('model_group_alias: a model whose one target is the group', () => {
    const { config } = imported({
      model_list: list,
      router_settings: {
        model_group_alias: { 'gpt-4': 'gpt-4o', hidden: { model: 'claude', hidden: true } },
      },
    });
    assert.deepEqual(config['models']['gpt-4'], { targets: [{ group: 'gpt-4o' }] });
    assert.deepEqual(config['models']['hidden'], { targets: [{ group: 'claude' }] });
  });
});

describe('cache, Redis, general settings', () => {
  const one = [
    deployment('m', { model: 'openai/gpt-4o' }),
    deployment('e', { model: 'openai/text-embedding-3-small' }),
  ];

  test('redis cache with ttl: every model cached (global scope, as LiteLLM), L2 in Redis', () => {
    const { config } = imported({
      model_list: one,
      litellm_settings: {
        cache: true,
        cache_params: { type: 'redis', host: 'redis.internal', port: 6380, password: 'p@ss:word', ttl: 600 },
      },
    });
    assert.deepEqual(config['models']['m']['cache'], { enabled: true, scope: 'global', ttl_s: 600 });
    assert.equal(config['storage']['redis_url'], 'redis://:p%40ss%3Aword@redis.internal:6380');
  });

  test('router Redis settings win; a password from the environment goes into the URL', () => {
    const { config } = imported({
      model_list: one,
      router_settings: {
        redis_host: 'os.environ/REDIS_HOST',
        redis_port: 6379,
        redis_password: 'os.environ/REDIS_PASSWORD',
      },
      litellm_settings: { cache: true, cache_params: { type: 'redis', host: 'other' } },
    });
    assert.equal(config['storage']['redis_url'], 'redis://:${REDIS_PASSWORD}@${REDIS_HOST}:6379');
    const loaded = load(
      importLiteLLMConfig({ model_list: one, router_settings: { redis_url: 'os.environ/REDIS_URL_X' } }).yaml,
      {
        REDIS_URL_X: 'redis://127.0.0.1:6399',
      },
    );
    assert.equal(loaded.storage.redis_url, 'redis://127.0.0.1:6399');
  });

  test('semantic cache: threshold, and the embedding model named (not itself)', () => {
    const { config } = imported({
      model_list: one,
      litellm_settings: {
        cache: true,
        cache_params: {
          type: 'qdrant-semantic',
          similarity_threshold: 0.8,
          qdrant_semantic_cache_embedding_model: 'e',
        },
      },
    });
    assert.deepEqual(config['models']['m']['cache']['semantic'], {
      enabled: true,
      threshold: 0.8,
      embedder: 'e',
    });
    assert.equal(config['models']['e']['cache']['semantic'], undefined);
    validateConfig(
      load(
        importLiteLLMConfig({
          model_list: one,
          litellm_settings: {
            cache: true,
            cache_params: {
              type: 'qdrant-semantic',
              similarity_threshold: 0.8,
              qdrant_semantic_cache_embedding_model: 'e',
            },
          },
        }).yaml,
      ),
    );
  });

  test('mode default_off keeps caching off; disk is the SQL tier', () => {
    const off = imported({
      model_list: one,
      litellm_settings: { cache: true, cache_params: { mode: 'default_off' } },
    });
    assert.equal(off.config['models']['m']['cache'], undefined);
    assert.equal(entry(off.report, 'litellm_settings.cache_params.mode').outcome, 'not translated');
    const disk = imported({
      model_list: one,
      litellm_settings: { cache: true, cache_params: { type: 'disk' } },
    });
    assert.deepEqual(disk.config['cache'], { sql: { enabled: true } });
  });

  test('master_key: from the environment as ${NAME}; a sample key is refused; database_url kept', () => {
    const env = imported({
      model_list: one,
      general_settings: {
        master_key: 'os.environ/LITELLM_MASTER_KEY',
        database_url: 'postgresql://u@db/litellm',
      },
    });
    assert.equal(env.config['master_key'], '${LITELLM_MASTER_KEY}');
    assert.equal(env.config['storage']['database_url'], 'postgresql://u@db/litellm');
    const sample = imported({ model_list: one, general_settings: { master_key: 'sk-1234' } });
    assert.equal(sample.config['master_key'], undefined);
    assert.equal(entry(sample.report, 'general_settings.master_key').outcome, 'not translated');
  });
});

describe('the report', () => {
  const input = {
    model_list: [
      deployment('m', {
        model: 'openai/gpt-4o',
        api_key: 'sk-live-SECRETSECRETSECRET',
        temperature: 0.2,
        aws_region_name: 'eu-west-1',
      }),
    ],
    router_settings: {
      routing_strategy: 'latency-based-routing',
      routing_strategy_args: { ttl: 10 },
      mystery: 1,
    },
    litellm_settings: { drop_params: true, success_callback: ['langfuse'], max_budget: 100 },
    general_settings: {
      master_key: 'sk-sy-very-long-master-key-SECRET',
      alerting: ['slack'],
      global_max_parallel_requests: 200,
    },
    environment_variables: { REDIS_HOST: 'x' },
  };

  test('every setting read is accounted for, and no value is quoted', () => {
    const result = importLiteLLMConfig(input);
    const settings = result.report.map((e) => e.setting);
    for (const setting of [
      'model_list[0].litellm_params.model',
      'model_list[0].litellm_params.api_key',
      'model_list[0].litellm_params.temperature',
      'model_list[0].litellm_params.aws_region_name',
      'router_settings.routing_strategy',
      'router_settings.routing_strategy_args',
      'router_settings.mystery',
      'litellm_settings.drop_params',
      'litellm_settings.success_callback',
      'litellm_settings.max_budget',
      'general_settings.master_key',
      'general_settings.alerting',
      'general_settings.global_max_parallel_requests',
      'environment_variables',
    ]) {
      assert.ok(settings.includes(setting), `${setting} missing from the report`);
    }
    const text = formatReport(result.report);
    assert.doesNotMatch(text, /SECRET/);
    assert.match(text, /\d+ translated, \d+ approximated, \d+ not translated\n$/);
    assert.deepEqual(result.config['limits'], { gateway: { max_concurrent: 200 } });
  });

  test('not a LiteLLM config: a clear error', () => {
    assert.throws(() => importLiteLLMConfig({ models: {} }), LiteLLMImportError);
    assert.throws(() => importLiteLLMConfig('hello'), /model_list/);
  });
});
