/**
 * The complexity judge through a running gateway, with the official openai
 * SDK: a cheap model of the gateway (served by its own mock upstream) rates
 * each request; its answer picks the tier, is cached per key by prompt hash,
 * is billed on the key's ledger rows (route `complexity-judge`), and a judge
 * that hangs or rambles leaves the decision to the heuristic
 * (`judge->heuristic`).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { registerSecret, startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { type MockUpstream, startMockUpstream } from '../helpers/mock-upstream.ts';

let main: MockUpstream;
let judgeUpstream: MockUpstream;
let gw: TestGateway;
let client: OpenAI;
let keyId: string;
let keySecret: string;

const apiKey = 'sk-CANARY-judge-0123456789abcdef';
const user = (content: string) => [{ role: 'user' as const, content }];

/** How many requests this mock received for this upstream model. */
const count = (mock: MockUpstream, model: string): number =>
  mock.requests.filter((r) => (r.body as { model?: unknown })?.model === model).length;

async function judgeRows(): Promise<Array<Record<string, unknown>>> {
  const { ledger, database } = gw.gateway.context;
  await ledger.flush();
  return database.db
    .selectFrom('usage_ledger')
    .select(['route', 'model_requested', 'model_used', 'key_id', 'status', 'cost_micros', 'prompt_tokens'])
    .where('route', '=', 'complexity-judge')
    .orderBy('created_at')
    .execute() as Promise<Array<Record<string, unknown>>>;
}

function logLine(requestId: string | null): { routing?: Record<string, unknown> } | undefined {
  return readFileSync(gw.logFile, 'utf8')
    .split('\n')
    .filter((l) => l.includes(`"requestId":"${requestId}"`) && l.includes('"msg":"request"'))
    .map((l) => JSON.parse(l) as { routing?: Record<string, unknown> })[0];
}

before(async () => {
  registerSecret(apiKey);
  [main, judgeUpstream] = await Promise.all([startMockUpstream(), startMockUpstream()]);
  const provider = (mock: MockUpstream) => ({ type: 'openai', base_url: mock.baseUrl, api_key: apiKey });
  gw = await startTestGateway({
    config: {
      providers: { main: provider(main), judges: provider(judgeUpstream) },
      models: {
        rater: { targets: [{ provider: 'judges', model: 'gpt-4o-mini' }], retries: { max: 0 } },
        auto: {
          strategy: 'complexity',
          complexity: { classifier: 'judge', judge: { model: 'rater', timeout_ms: 400 } },
          targets: [
            { provider: 'main', model: 'small-model', tier: 'small' },
            { provider: 'main', model: 'medium-model', tier: 'medium' },
            { provider: 'main', model: 'large-model', tier: 'large' },
          ],
        },
      },
    },
  });
  const res = await fetch(`${gw.url}/admin/keys`, {
    method: 'POST',
    headers: { authorization: `Bearer ${gw.masterKey}`, 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'judged' }),
  });
  const created = (await res.json()) as { key: string; id: string };
  assert.equal(res.status, 201);
  registerSecret(created.key);
  keyId = created.id;
  keySecret = created.key;
  client = new OpenAI({ baseURL: gw.baseUrl, apiKey: created.key, maxRetries: 0 });
});

after(async () => {
  await gw.close();
  await Promise.all([main.close(), judgeUpstream.close()]);
});

describe('complexity judge through the gateway', () => {
  test("the judge's answer picks the tier; its call is billed to the key on its own ledger row", async () => {
    judgeUpstream.setDefault({ text: 'large' });
    const before = count(main, 'large-model');
    const { data, response } = await client.chat.completions
      .create({ model: 'auto', messages: user('What is the capital of France?') })
      .withResponse();
    assert.equal(data.choices[0]?.message.content, 'Echo: What is the capital of France?');
    assert.equal(response.headers.get('x-switchyard-tier'), 'large', 'the heuristic alone says small');
    assert.equal(response.headers.get('x-switchyard-complexity-classifier'), 'judge');
    assert.equal(response.headers.get('x-switchyard-complexity-confidence'), '0.9');
    assert.equal(count(main, 'large-model'), before + 1);
    // The judge was sent the rating prompt, not the user's request as is.
    const sent = judgeUpstream.requests.at(-1)!.body as {
      model: string;
      messages: Array<{ content: string }>;
    };
    assert.equal(sent.model, 'gpt-4o-mini');
    assert.match(sent.messages[1]!.content, /<request>\nWhat is the capital of France\?\n<\/request>/);
    const rows = await judgeRows();
    assert.equal(rows.length, 1);
    assert.equal(rows[0]!['key_id'], keyId);
    assert.equal(rows[0]!['model_requested'], 'rater');
    assert.equal(rows[0]!['model_used'], 'gpt-4o-mini');
    assert.equal(rows[0]!['status'], 'ok');
    assert.ok(Number(rows[0]!['cost_micros']) > 0, 'priced from the built-in table');
    const routing = logLine(response.headers.get('x-request-id'))?.routing;
    assert.equal(routing?.['classifier'], 'judge');
    assert.equal(routing?.['judge'], 'asked');
    assert.equal(routing?.['judge_cost_usd'], Number(rows[0]!['cost_micros']) / 1_000_000);
    const log = readFileSync(gw.logFile, 'utf8');
    assert.ok(!log.includes('<request>'), 'the judge prompt is never logged');
  });

  test('the same prompt again is judged from the cache: no call to the judge, no new row', async () => {
    const judgeCalls = judgeUpstream.requests.length;
    const { response } = await client.chat.completions
      .create({ model: 'auto', messages: user('What is the capital of France?'), stream: true })
      .withResponse();
    assert.equal(response.headers.get('x-switchyard-tier'), 'large');
    assert.equal(response.headers.get('x-switchyard-complexity-classifier'), 'judge');
    assert.equal(judgeUpstream.requests.length, judgeCalls);
    assert.equal((await judgeRows()).length, 1);
  });

  test('a judge that hangs past timeout_ms: the heuristic decides (judge->heuristic), the request is served', async () => {
    judgeUpstream.enqueue({ kind: 'hang', path: '/chat/completions' });
    const { data, response } = await client.chat.completions
      .create({ model: 'auto', messages: user('Translate "good night" into Spanish.') })
      .withResponse();
    assert.match(data.choices[0]?.message.content ?? '', /^Echo: Translate/);
    assert.equal(response.headers.get('x-switchyard-complexity-classifier'), 'judge->heuristic');
    assert.equal(response.headers.get('x-switchyard-tier'), 'small');
    assert.equal(logLine(response.headers.get('x-request-id'))?.routing?.['judge'], 'timeout');
  });

  test('a judge that answers anything but a tier: the heuristic decides; the call is still billed', async () => {
    const rowsBefore = (await judgeRows()).length;
    judgeUpstream.enqueue({ text: 'That depends on your expectations.', path: '/chat/completions' });
    const { response } = await client.chat.completions
      .create({
        model: 'auto',
        messages: user('Prove that the square root of 2 is irrational, step by step, with every lemma.'),
      })
      .withResponse();
    assert.equal(response.headers.get('x-switchyard-complexity-classifier'), 'judge->heuristic');
    assert.equal(response.headers.get('x-switchyard-tier'), 'large');
    assert.equal(logLine(response.headers.get('x-request-id'))?.routing?.['judge'], 'invalid');
    assert.equal((await judgeRows()).length, rowsBefore + 1);
  });

  test("Anthropic's Messages API and the Responses API are judged the same way", async () => {
    judgeUpstream.setDefault({ text: 'medium' });
    const anthropic = new Anthropic({ baseURL: gw.url, apiKey: keySecret, authToken: null, maxRetries: 0 });
    const { response } = await anthropic.messages
      .create({ model: 'auto', max_tokens: 100, messages: user('Name a colour.') })
      .withResponse();
    assert.equal(response.headers.get('x-switchyard-tier'), 'medium');
    assert.equal(response.headers.get('x-switchyard-complexity-classifier'), 'judge');
    const { response: viaResponses } = await client.responses
      .create({ model: 'auto', input: 'Name a fruit.' })
      .withResponse();
    assert.equal(viaResponses.headers.get('x-switchyard-tier'), 'medium');
    assert.equal(viaResponses.headers.get('x-switchyard-complexity-classifier'), 'judge');
  });
});
