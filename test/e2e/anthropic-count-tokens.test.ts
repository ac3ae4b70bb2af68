/**
 * `POST /v1/messages/count_tokens` through the official `@anthropic-ai/sdk`:
 * exact when the model's first active target is an Anthropic provider (the
 * upstream's own `/v1/messages/count_tokens` answers, for the target's model),
 * the gateway's estimate otherwise; `x-switchyard-token-count` says which.
 * The mock Anthropic counts with its own tokenizer (words + 3 per message),
 * which the estimate (~4 characters a token) never matches by accident here.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, beforeEach, describe, test } from 'node:test';
import Anthropic from '@anthropic-ai/sdk';
import { fromAnthropicPrompt } from '../../src/api/anthropic/anthropic-inbound-request.ts';
import { estimatePromptTokens } from '../../src/core/token-estimate.ts';
import { registerSecret, startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { type MockAnthropic, startMockAnthropic } from '../helpers/mock-anthropic.ts';
import { type MockUpstream, startMockUpstream } from '../helpers/mock-upstream.ts';

const ANTHROPIC_KEY = `sk-ant-CANARY-${randomBytes(10).toString('hex')}`;
const OPENAI_KEY = `sk-CANARY-${randomBytes(10).toString('hex')}`;
registerSecret(ANTHROPIC_KEY);
registerSecret(OPENAI_KEY);

const PARKED_TARGET = 'anthropic/claude-opus-4-1';

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
        anthropic: { type: 'anthropic', api_key: ANTHROPIC_KEY, base_url: claude.url },
        up: { type: 'openai', api_key: OPENAI_KEY, base_url: openai.baseUrl },
      },
      models: {
        claude: {
          targets: [
            { provider: 'anthropic', model: 'claude-sonnet-4-5' },
            { provider: 'up', model: 'gpt-4o-mini' },
          ],
        },
        gpt: { targets: [{ provider: 'up', model: 'gpt-4o-mini' }] },
        'gpt-then-claude': {
          targets: [
            { provider: 'up', model: 'gpt-4o-mini' },
            { provider: 'anthropic', model: 'claude-sonnet-4-5' },
          ],
        },
        parked: {
          targets: [
            { provider: 'anthropic', model: 'claude-opus-4-1' },
            { provider: 'up', model: 'gpt-4o' },
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

const PROMPT = {
  system: 'You answer in one short sentence.',
  messages: [
    { role: 'user' as const, content: 'what is the capital of France' },
    { role: 'assistant' as const, content: 'Paris.' },
    { role: 'user' as const, content: 'and of Italy' },
  ],
};

/** The mock's tokenizer: (words + 3) for the system prompt and each message. */
const MOCK_COUNT = 6 + 3 + (6 + 3) + (1 + 3) + (3 + 3);

async function count(model: string, extra: Record<string, unknown> = {}) {
  const { data, response } = await client.messages
    .countTokens({ model, ...PROMPT, ...extra } as Anthropic.MessageCountTokensParams)
    .withResponse();
  return { tokens: data.input_tokens, source: response.headers.get('x-switchyard-token-count') };
}

async function admin(path: string): Promise<void> {
  const res = await fetch(`${gw.url}${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${gw.masterKey}` },
  });
  assert.equal(res.status, 200, await res.text());
}

describe('exact: the first active target is an Anthropic provider', () => {
  test('the upstream counts the client body (model replaced); the same count its Messages API bills', async () => {
    const tools = [{ name: 'lookup', description: 'Look up', input_schema: { type: 'object' as const } }];
    const result = await count('claude', { tools });
    assert.deepEqual(result, { tokens: MOCK_COUNT, source: 'exact' });
    const [sent] = await claude.waitForRequests(1);
    assert.equal(sent?.method, 'POST');
    assert.equal(sent?.path, '/v1/messages/count_tokens');
    assert.deepEqual(sent?.body, { model: 'claude-sonnet-4-5', ...PROMPT, tools });
    assert.equal(sent?.headers['x-api-key'], ANTHROPIC_KEY);
    assert.ok(!JSON.stringify(sent?.headers).includes(gw.masterKey), 'the client key reached the upstream');
    assert.equal(openai.requests.length, 0);

    const message = await client.messages.create({ model: 'claude', max_tokens: 16, ...PROMPT });
    assert.equal(message.usage.input_tokens, result.tokens);
  });

  test('the SDK’s betas (beta.messages.countTokens) reach the upstream', async () => {
    const { data, response } = await client.beta.messages
      .countTokens({ model: 'claude', ...PROMPT, betas: ['files-api-2025-04-14'] })
      .withResponse();
    assert.equal(data.input_tokens, MOCK_COUNT);
    assert.equal(response.headers.get('x-switchyard-token-count'), 'exact');
    const [sent] = await claude.waitForRequests(1);
    const betas = String(sent?.headers['anthropic-beta']).split(',');
    assert.ok(betas.includes('files-api-2025-04-14'), `betas sent: ${betas.join(',')}`);
  });

  test('an upstream that cannot count now (529) gives way to the estimate, said so', async () => {
    claude.enqueue({ kind: 'status', status: 529 });
    const result = await count('claude');
    assert.equal(result.source, 'estimate');
    assert.equal(result.tokens, estimatedCount());
    assert.equal(claude.requests.length, 1);
  });

  test('a request the upstream refuses (400) is the client’s error, in Anthropic’s shape', async () => {
    claude.enqueue({ kind: 'status', status: 400 });
    let caught: unknown;
    try {
      await count('claude');
    } catch (error) {
      caught = error;
    }
    assert.ok(caught instanceof Anthropic.BadRequestError, `got ${String(caught)}`);
    assert.equal(caught.status, 400);
    assert.equal((caught.error as { error?: { type?: string } }).error?.type, 'invalid_request_error');
  });
});

/** The gateway's documented estimate for PROMPT (no tools). */
function estimatedCount(): number {
  return estimatePromptTokens(fromAnthropicPrompt({ model: 'x', ...PROMPT }));
}

describe('estimate: any other first active target', () => {
  test('an OpenAI target: the estimate, no upstream call', async () => {
    const result = await count('gpt');
    assert.deepEqual(result, { tokens: estimatedCount(), source: 'estimate' });
    assert.notEqual(result.tokens, MOCK_COUNT);
    assert.equal(openai.requests.length, 0);
    assert.equal(claude.requests.length, 0);
  });

  test('an Anthropic target that is not first: the estimate', async () => {
    const result = await count('gpt-then-claude');
    assert.equal(result.source, 'estimate');
    assert.equal(claude.requests.length, 0);
  });

  test('an Anthropic first target deactivated by an operator: the estimate; reactivated: exact again', async () => {
    await admin(`/admin/targets/${encodeURIComponent(PARKED_TARGET)}/deactivate`);
    try {
      assert.equal((await count('parked')).source, 'estimate');
      assert.equal(claude.requests.length, 0);
    } finally {
      await admin(`/admin/targets/${encodeURIComponent(PARKED_TARGET)}/activate`);
    }
    const result = await count('parked');
    assert.deepEqual(result, { tokens: MOCK_COUNT, source: 'exact' });
    const [sent] = await claude.waitForRequests(1);
    assert.equal((sent?.body as { model?: string } | undefined)?.model, 'claude-opus-4-1');
  });
});
