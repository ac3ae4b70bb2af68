/**
 * `switchyard import litellm` on three realistic LiteLLM configs
 * (test/fixtures/litellm/): each imports through the CLI, passes
 * `switchyard check-config`, and a gateway started on it routes as LiteLLM
 * would: each model to its provider (simple list); the fallback taken when
 * the primary fails, and the cooled-down primary left alone (fallbacks with
 * retries and cooldowns); weights splitting traffic, rpm caps holding, and
 * answers cached in Redis across instances (weighted deployments with Redis).
 * Upstreams are the mock OpenAI, Anthropic and Gemini servers.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import OpenAI from 'openai';
import pino from 'pino';
import { loadConfig } from '../../src/config/load.ts';
import { createLogger } from '../../src/observability/logger.ts';
import { Gateway } from '../../src/server/gateway.ts';
import { logDir, newMasterKey, registerSecret, runCli, tempDir } from '../helpers/gateway.ts';
import { type MockAnthropic, startMockAnthropic } from '../helpers/mock-anthropic.ts';
import { type MockGemini, startMockGemini } from '../helpers/mock-gemini.ts';
import { type MockUpstream, startMockUpstream } from '../helpers/mock-upstream.ts';
import { type RedisService, startRedis } from '../helpers/services.ts';

const FIXTURES = resolve(import.meta.dirname, '../fixtures/litellm');

interface ImportedGateway {
  url: string;
  client: OpenAI;
  masterKey: string;
  close(): Promise<void>;
}

/** `switchyard import litellm <fixture> --out <file>`: exit 0, the report on stderr. */
async function importFixture(name: string): Promise<{ file: string; report: string }> {
  const file = join(tempDir('litellm-import-'), 'switchyard.yaml');
  const result = await runCli(['import', 'litellm', join(FIXTURES, name), '--out', file]);
  assert.equal(result.code, 0, result.stderr);
  assert.equal(result.stdout, '', 'with --out the config goes to the file');
  assert.match(result.stderr, /\d+ translated, \d+ approximated, \d+ not translated/);
  return { file, report: result.stderr };
}

async function checkConfig(file: string, env: Record<string, string>): Promise<void> {
  const result = await runCli(['check-config', '--config', file], { env });
  assert.equal(result.code, 0, result.stderr);
  assert.match(result.stderr, /^config OK/m);
}

/** A gateway in this process on the imported file, read as `switchyard start` reads it. */
async function startImported(file: string, env: Record<string, string>): Promise<ImportedGateway> {
  const masterKey = env['LITELLM_MASTER_KEY']!;
  const { config } = loadConfig({ path: file, env: { ...env, SWITCHYARD_DATA_DIR: tempDir() } });
  const logFile = join(logDir(), `gateway-litellm-${process.pid}-${randomBytes(4).toString('hex')}.log`);
  const logger = createLogger({
    level: 'info',
    destination: pino.destination({ dest: logFile, sync: true }),
  });
  const gateway = await Gateway.create({ config, logger });
  const address = await gateway.listen('127.0.0.1', 0);
  const url = `http://127.0.0.1:${address.port}`;
  return {
    url,
    masterKey,
    client: new OpenAI({ baseURL: `${url}/v1`, apiKey: masterKey, maxRetries: 0 }),
    close: () => gateway.close(),
  };
}

function providerKey(name: string): string {
  const key = `${name}-${randomBytes(8).toString('hex')}`;
  registerSecret(key);
  return key;
}

/** The model calls a mock received (the gateway's health checks also GET its model list). */
const calls = <R extends { method: string }>(mock: { requests: R[] }): R[] =>
  mock.requests.filter((r) => r.method === 'POST');

const modelsSeen = (mock: { requests: { method: string; body: unknown }[] }) =>
  calls(mock).map((r) => (r.body as { model?: string } | undefined)?.model);

describe('simple list: one deployment per model, five providers', () => {
  let openai: MockUpstream;
  let ollama: MockUpstream;
  let vllm: MockUpstream;
  let anthropic: MockAnthropic;
  let gemini: MockGemini;
  let gw: ImportedGateway;
  let env: Record<string, string>;
  let file: string;

  before(async () => {
    [openai, ollama, vllm, anthropic, gemini] = await Promise.all([
      startMockUpstream(),
      startMockUpstream(),
      startMockUpstream(),
      startMockAnthropic(),
      startMockGemini(),
    ]);
    env = {
      OPENAI_API_KEY: providerKey('sk-openai'),
      OPENAI_API_BASE: openai.baseUrl,
      ANTHROPIC_API_KEY: providerKey('sk-ant'),
      ANTHROPIC_API_BASE: anthropic.url,
      GEMINI_API_KEY: providerKey('AIza'),
      GEMINI_API_BASE: gemini.url,
      OLLAMA_API_BASE: ollama.url, // LiteLLM's Ollama base has no /v1; the import adds it
      VLLM_API_BASE: vllm.baseUrl,
      LITELLM_MASTER_KEY: newMasterKey(),
    };
    ({ file } = await importFixture('simple-list.yaml'));
  });
  after(async () => {
    await gw?.close();
    await Promise.all([openai, ollama, vllm, anthropic, gemini].map((m) => m?.close()));
  });

  test('the import passes check-config', async () => {
    await checkConfig(file, env);
    gw = await startImported(file, env);
  });

  test('each model is served by its provider, with its upstream model id', async () => {
    const expectations: [string, string, () => (string | undefined)[]][] = [
      ['gpt-4o-mini', 'gpt-4o-mini', () => modelsSeen(openai)],
      ['llama3', 'llama3.1', () => modelsSeen(ollama)],
      ['qwen-local', 'Qwen/Qwen2.5-7B-Instruct', () => modelsSeen(vllm)],
      ['claude-sonnet', 'claude-sonnet-4-5', () => modelsSeen(anthropic)],
    ];
    for (const [model, upstreamModel, seen] of expectations) {
      const completion = await gw.client.chat.completions.create({
        model,
        messages: [{ role: 'user', content: `hello ${model}` }],
      });
      assert.equal(completion.choices[0]?.message.content, `Echo: hello ${model}`, model);
      assert.deepEqual(seen(), [upstreamModel], model);
    }
    const viaGemini = await gw.client.chat.completions.create({
      model: 'gemini-flash',
      messages: [{ role: 'user', content: 'hello gemini' }],
    });
    assert.equal(viaGemini.choices[0]?.message.content, 'Echo: hello gemini');
    assert.equal(calls(gemini).length, 1);
    assert.match(calls(gemini)[0]!.path, /gemini-2\.5-flash:generateContent/);
    assert.equal(calls(gemini)[0]!.headers['x-goog-api-key'], env['GEMINI_API_KEY']);
    assert.equal(calls(anthropic)[0]!.headers['x-api-key'], env['ANTHROPIC_API_KEY']);
    assert.equal(calls(openai)[0]!.headers.authorization, `Bearer ${env['OPENAI_API_KEY']}`);
  });

  test('the embedding model answers embeddings', async () => {
    const result = await gw.client.embeddings.create({ model: 'text-embedding-3-small', input: 'hello' });
    assert.equal(result.data.length, 1);
    assert.equal(modelsSeen(openai).at(-1), 'text-embedding-3-small');
  });
});

describe('fallbacks with retries and cooldowns', () => {
  let openai: MockUpstream;
  let anthropic: MockAnthropic;
  let gw: ImportedGateway;
  let env: Record<string, string>;
  let file: string;
  let report: string;

  before(async () => {
    [openai, anthropic] = await Promise.all([startMockUpstream(), startMockAnthropic()]);
    env = {
      OPENAI_API_KEY: providerKey('sk-openai'),
      OPENAI_API_BASE: openai.baseUrl,
      ANTHROPIC_API_KEY: providerKey('sk-ant'),
      ANTHROPIC_API_BASE: anthropic.url,
      LITELLM_MASTER_KEY: newMasterKey(),
    };
    ({ file, report } = await importFixture('fallbacks.yaml'));
  });
  after(async () => {
    await gw?.close();
    await Promise.all([openai?.close(), anthropic?.close()]);
  });

  test('the import passes check-config and reports retries, cooldowns and fallbacks', async () => {
    await checkConfig(file, env);
    assert.match(report, /^approximated\s+router_settings\.num_retries: retries\.max: 2/m);
    assert.match(
      report,
      /^translated\s+router_settings\.cooldown_time: circuit_breaker\.recovery_timeout_ms: 30000/m,
    );
    assert.match(report, /^translated\s+router_settings\.fallbacks\.gpt-4o: .*group: claude-fallback/m);
    assert.match(report, /^not translated\s+router_settings\.retry_policy/m);
    gw = await startImported(file, env);
  });

  test('a prompt beyond gpt-4o-mini’s context window goes to its context-window fallback, gpt-4o', async () => {
    const long = 'lorem ipsum dolor sit amet '.repeat(4_000);
    const completion = await gw.client.chat.completions.create({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: long }],
    });
    assert.ok(completion.choices[0]?.message.content?.startsWith('Echo: lorem'));
    assert.deepEqual(modelsSeen(openai), ['gpt-4o']);
    openai.reset();
  });

  test('the primary failing: retried, then the fallback answers', async () => {
    openai.setDefault({ kind: 'status', status: 500 });
    const completion = await gw.client.chat.completions.create({
      model: 'gpt-4o',
      messages: [{ role: 'user', content: 'first' }],
    });
    assert.equal(completion.choices[0]?.message.content, 'Echo: first');
    assert.deepEqual(modelsSeen(anthropic), ['claude-sonnet-4-5']);
    assert.ok(calls(openai).length >= 2, `the primary was retried (${calls(openai).length} attempts)`);
    assert.ok(calls(openai).every((r) => (r.body as { model: string }).model === 'gpt-4o'));
  });

  test('the failed primary is cooled down: the next requests go straight to the fallback', async () => {
    const attempts = calls(openai).length;
    for (const content of ['second', 'third']) {
      const completion = await gw.client.chat.completions.create({
        model: 'gpt-4o',
        messages: [{ role: 'user', content }],
      });
      assert.equal(completion.choices[0]?.message.content, `Echo: ${content}`);
    }
    assert.equal(calls(openai).length, attempts, 'no request reached the cooled-down primary');
    assert.equal(calls(anthropic).length, 3);
  });
});

describe('weighted deployments with rpm/tpm and a Redis cache', () => {
  let redis: RedisService;
  let east: MockUpstream;
  let west: MockUpstream;
  let small: MockUpstream;
  let roomy: MockUpstream;
  let gw: ImportedGateway;
  let second: ImportedGateway | undefined;
  let env: Record<string, string>;
  let file: string;

  before(async () => {
    redis = await startRedis();
    [east, west, small, roomy] = await Promise.all([
      startMockUpstream(),
      startMockUpstream(),
      startMockUpstream(),
      startMockUpstream(),
    ]);
    const { hostname, port } = new URL(redis.url);
    env = {
      AZURE_EASTUS_API_BASE: east.url,
      AZURE_EASTUS_API_KEY: providerKey('azure-east'),
      AZURE_WESTEU_API_BASE: west.url,
      AZURE_WESTEU_API_KEY: providerKey('azure-west'),
      OPENAI_API_KEY: providerKey('sk-a'),
      OPENAI_API_BASE: small.baseUrl,
      OPENAI_API_KEY_2: providerKey('sk-b'),
      OPENAI_API_BASE_2: roomy.baseUrl,
      REDIS_HOST: hostname,
      REDIS_PORT: port,
      LITELLM_MASTER_KEY: newMasterKey(),
    };
    ({ file } = await importFixture('weighted-redis.yaml'));
  });
  after(async () => {
    await second?.close();
    await gw?.close();
    await Promise.all([east, west, small, roomy].map((m) => m?.close()));
    await redis?.stop();
  });

  test('the import passes check-config, with Redis and the caps', async () => {
    await checkConfig(file, env);
    const text = readFileSync(file, 'utf8');
    assert.match(text, /redis_url: redis:\/\/\$\{REDIS_HOST\}:\$\{REDIS_PORT\}/);
    gw = await startImported(file, env);
  });

  test('weights 3:1 split gpt-4o traffic between the Azure regions', async (t) => {
    const total = 200;
    for (let i = 0; i < total; i++) {
      await gw.client.chat.completions.create({
        model: 'gpt-4o',
        messages: [{ role: 'user', content: `split ${i}` }],
      });
    }
    assert.equal(calls(east).length + calls(west).length, total);
    t.diagnostic(`east ${calls(east).length}, west ${calls(west).length} of ${total}`);
    // Binomial(200, 0.75): mean 150, sd 6.1; the bounds are 5 sd out.
    assert.ok(calls(east).length >= 120 && calls(east).length <= 180, `east got ${calls(east).length}`);
    assert.ok(
      modelsSeen(east).length > 0 && calls(east).every((r) => r.path.includes('/deployments/gpt-4o-eastus/')),
    );
    assert.ok(calls(west).every((r) => r.path.includes('/deployments/gpt-4o-westeurope/')));
  });

  test('rpm caps hold: the rpm-5 deployment stops taking traffic near its cap despite weight 9', async (t) => {
    for (let i = 0; i < 15; i++) {
      await gw.client.chat.completions.create({
        model: 'gpt-4o-mini',
        messages: [{ role: 'user', content: `cap ${i}` }],
      });
    }
    t.diagnostic(`rpm-5 deployment ${calls(small).length}, rpm-20 deployment ${calls(roomy).length} of 15`);
    // Weighted 9:1 alone would send ~13 of 15 to the rpm-5 deployment.
    assert.ok(calls(small).length <= 5, `the rpm-5 deployment got ${calls(small).length}`);
    assert.equal(calls(small).length + calls(roomy).length, 15);
  });

  test('and the group as a whole is held to the sum of its rpm (25 a minute): beyond it, 429', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 15; i++) {
      const res = await fetch(`${gw.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${gw.masterKey}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: `more ${i}` }] }),
      });
      statuses.push(res.status);
      await res.arrayBuffer();
    }
    assert.deepEqual(
      statuses,
      [...Array(10).fill(200), ...Array(5).fill(429)],
      'ten more fit in the 25 a minute, then 429',
    );
    assert.equal(calls(small).length + calls(roomy).length, 25);
  });

  test('answers are cached in Redis: a second instance serves a repeat without the upstream', async () => {
    const ask = (client: OpenAI) =>
      client.chat.completions
        .create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'cache me' }] })
        .withResponse();
    const before = calls(east).length + calls(west).length;
    const first = await ask(gw.client);
    assert.equal(calls(east).length + calls(west).length, before + 1);
    second = await startImported(file, env);
    const again = await ask(second.client);
    assert.equal(again.response.headers.get('x-switchyard-cache'), 'hit');
    assert.equal(again.data.choices[0]?.message.content, first.data.choices[0]?.message.content);
    assert.equal(calls(east).length + calls(west).length, before + 1, 'the repeat never reached an upstream');
  });
});
