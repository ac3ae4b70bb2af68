/**
 * The official `@anthropic-ai/sdk` → gateway → mock Anthropic / mock OpenAI:
 * an Anthropic client's `anthropic-beta` values reach an Anthropic target
 * (merged after the provider's configured betas, each once) so beta features
 * work through the gateway; its `anthropic-version` does not (the provider's
 * configured version is authoritative), and no other client header is sent
 * upstream, least of all the client's key. A non-Anthropic target never sees
 * an Anthropic header, also when it serves as the fallback of an Anthropic one.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { after, before, beforeEach, describe, test } from 'node:test';
import Anthropic from '@anthropic-ai/sdk';
import { registerSecret, startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { type MockAnthropic, startMockAnthropic } from '../helpers/mock-anthropic.ts';
import { type MockUpstream, startMockUpstream } from '../helpers/mock-upstream.ts';

const ANTHROPIC_KEY = `sk-ant-CANARY-${randomBytes(10).toString('hex')}`;
const OPENAI_KEY = `sk-CANARY-${randomBytes(10).toString('hex')}`;
registerSecret(ANTHROPIC_KEY);
registerSecret(OPENAI_KEY);

const CONFIGURED_BETA = 'context-1m-2025-08-07';
const CONFIGURED_VERSION = '2023-06-01';
const CLIENT_VERSION = '2099-12-31';

let claude: MockAnthropic;
let openai: MockUpstream;
let gw: TestGateway;
let client: Anthropic;

before(async () => {
  claude = await startMockAnthropic({ requireApiKey: ANTHROPIC_KEY });
  openai = await startMockUpstream({ requireApiKey: OPENAI_KEY });
  gw = await startTestGateway({
    config: {
      providers: {
        // Header names in config are case-insensitive, as in HTTP.
        anthropic: {
          type: 'anthropic',
          api_key: ANTHROPIC_KEY,
          base_url: claude.url,
          anthropic_version: CONFIGURED_VERSION,
          headers: { 'Anthropic-Beta': CONFIGURED_BETA },
        },
        plain: { type: 'anthropic', api_key: ANTHROPIC_KEY, base_url: claude.url },
        up: { type: 'openai', api_key: OPENAI_KEY, base_url: openai.baseUrl },
      },
      models: {
        claude: { targets: [{ provider: 'anthropic', model: 'claude-sonnet-4-5' }] },
        plain: { targets: [{ provider: 'plain', model: 'claude-haiku-4-5' }] },
        gpt: { targets: [{ provider: 'up', model: 'gpt-4o-mini' }] },
        mixed: {
          retries: { max: 0 },
          circuit_breaker: { enabled: false },
          targets: [
            { provider: 'anthropic', model: 'claude-sonnet-4-5' },
            { provider: 'up', model: 'gpt-4o-mini' },
          ],
        },
      },
    },
  });
  client = new Anthropic({ baseURL: gw.url, apiKey: gw.masterKey, maxRetries: 0 });
});

after(async () => {
  await gw?.close();
  await claude?.close();
  await openai?.close();
});

beforeEach(() => {
  claude.reset();
  openai.reset();
});

const ask = (model: string, text = 'hello there') => ({
  model,
  max_tokens: 64,
  messages: [{ role: 'user' as const, content: text }],
});

/** What the client adds on top of the SDK's own headers. */
const CLIENT_HEADERS = {
  'anthropic-beta': `files-api-2025-04-14, ${CONFIGURED_BETA},interleaved-thinking-2025-05-14`,
  'anthropic-version': CLIENT_VERSION,
  'x-client-secret-header': 'must-not-travel',
};

/** No header the client sent (its key, its own headers) reached the upstream. */
function assertNothingOfTheClient(headers: IncomingHttpHeaders): void {
  const all = JSON.stringify(headers);
  assert.ok(!all.includes(gw.masterKey), 'the client key reached the upstream');
  assert.equal(headers['x-client-secret-header'], undefined);
  assert.equal(headers['x-stainless-lang'], undefined, 'SDK headers are not forwarded');
}

describe('anthropic-beta to an Anthropic target', () => {
  test('JSON: configured betas first, then the client’s, each once; the configured version; the provider key', async () => {
    await client.messages.create(ask('claude'), { headers: CLIENT_HEADERS });
    const [sent] = await claude.waitForRequests(1);
    assert.equal(sent?.path, '/v1/messages');
    assert.equal(
      sent?.headers['anthropic-beta'],
      `${CONFIGURED_BETA},files-api-2025-04-14,interleaved-thinking-2025-05-14`,
    );
    assert.equal(sent?.headers['anthropic-version'], CONFIGURED_VERSION);
    assert.equal(sent?.headers['x-api-key'], ANTHROPIC_KEY);
    assert.equal(sent?.headers['authorization'], undefined);
    assertNothingOfTheClient(sent!.headers);
  });

  test('streaming passthrough forwards them too', async () => {
    const stream = await client.messages.create(
      { ...ask('claude'), stream: true },
      { headers: { 'anthropic-beta': 'fine-grained-tool-streaming-2025-05-14' } },
    );
    let text = '';
    for await (const event of stream) {
      if (event.type === 'content_block_delta' && event.delta.type === 'text_delta') text += event.delta.text;
    }
    assert.equal(text, 'Echo: hello there');
    const [sent] = await claude.waitForRequests(1);
    assert.equal(
      sent?.headers['anthropic-beta'],
      `${CONFIGURED_BETA},fine-grained-tool-streaming-2025-05-14`,
    );
  });

  test('a provider without configured betas gets the client’s alone; none from the client, none sent', async () => {
    await client.messages.create(ask('plain'), { headers: { 'anthropic-beta': 'files-api-2025-04-14' } });
    await client.messages.create(ask('plain'));
    const [withBeta, without] = await claude.waitForRequests(2);
    assert.equal(withBeta?.headers['anthropic-beta'], 'files-api-2025-04-14');
    assert.equal(without?.headers['anthropic-beta'], undefined);
    // The provider's default version, whatever the client sent.
    assert.equal(withBeta?.headers['anthropic-version'], '2023-06-01');
  });

  test('without client betas the configured ones are still sent', async () => {
    await client.messages.create(ask('claude'));
    const [sent] = await claude.waitForRequests(1);
    assert.equal(sent?.headers['anthropic-beta'], CONFIGURED_BETA);
  });
});

describe('non-Anthropic targets never receive Anthropic headers', () => {
  test('an OpenAI target serving /v1/messages gets neither anthropic-beta nor anthropic-version', async () => {
    const message = await client.messages.create(ask('gpt'), { headers: CLIENT_HEADERS });
    assert.equal(message.content[0]?.type, 'text');
    const [sent] = await openai.waitForRequests(1);
    assert.equal(sent?.headers['anthropic-beta'], undefined);
    assert.equal(sent?.headers['anthropic-version'], undefined);
    assert.equal(sent?.headers['authorization'], `Bearer ${OPENAI_KEY}`);
    assertNothingOfTheClient(sent!.headers);
  });

  test('fallback from an Anthropic target (529) to an OpenAI one: only the Anthropic attempt had the betas', async () => {
    claude.enqueue({ kind: 'status', status: 529 });
    const { response } = await client.messages
      .create(ask('mixed'), { headers: CLIENT_HEADERS })
      .withResponse();
    assert.equal(response.headers.get('x-switchyard-provider'), 'up');
    const [first] = await claude.waitForRequests(1);
    assert.equal(first?.status, 529);
    assert.match(String(first?.headers['anthropic-beta']), /files-api-2025-04-14/);
    const [second] = await openai.waitForRequests(1);
    assert.equal(second?.headers['anthropic-beta'], undefined);
    assert.equal(second?.headers['anthropic-version'], undefined);
    assertNothingOfTheClient(second!.headers);
  });
});
