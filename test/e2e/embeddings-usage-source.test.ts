/**
 * The ledger says where an embeddings call's token counts came from: Gemini
 * reports no usage for embeddings, so its adapter estimates it and the row
 * says `usage_source = 'estimated'`; an OpenAI upstream reports its own, and
 * the row says 'upstream'. Checked on the persisted rows (the ledger queue
 * flushed to the database), through the official `openai` SDK; the marker
 * that carries the fact never reaches the client.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import OpenAI from 'openai';
import { registerSecret, startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { type MockGemini, startMockGemini } from '../helpers/mock-gemini.ts';
import { type MockUpstream, startMockUpstream } from '../helpers/mock-upstream.ts';
import { type LedgerAttemptRow, ledgerRows } from '../helpers/resilience.ts';

const GEMINI_KEY = `AIzaSy-CANARY-${randomBytes(12).toString('hex')}`;
const OPENAI_KEY = `sk-CANARY-${randomBytes(10).toString('hex')}`;
registerSecret(GEMINI_KEY);
registerSecret(OPENAI_KEY);

let gemini: MockGemini;
let openai: MockUpstream;
let gw: TestGateway;
let client: OpenAI;

before(async () => {
  gemini = await startMockGemini({ requireApiKey: GEMINI_KEY });
  openai = await startMockUpstream({ requireApiKey: OPENAI_KEY });
  gw = await startTestGateway({
    config: {
      providers: {
        gemini: { type: 'gemini', api_key: GEMINI_KEY, base_url: gemini.url },
        up: { type: 'openai', api_key: OPENAI_KEY, base_url: openai.baseUrl },
      },
      models: {
        'gemini-embed': { targets: [{ provider: 'gemini', model: 'gemini-embedding-001' }] },
        'openai-embed': { targets: [{ provider: 'up', model: 'text-embedding-3-small' }] },
      },
    },
  });
  client = new OpenAI({ baseURL: gw.baseUrl, apiKey: gw.masterKey, maxRetries: 0 });
});

after(async () => {
  await gw?.close();
  await gemini?.close();
  await openai?.close();
});

/** Embeds through the SDK under a fresh request id; returns the answer and its persisted ledger row. */
async function embed(model: string, input: string | string[]) {
  const requestId = `embed-${randomBytes(6).toString('hex')}`;
  const response = await client.embeddings.create(
    { model, input, encoding_format: 'float' },
    { headers: { 'x-request-id': requestId } },
  );
  const rows = (await ledgerRows(gw)).filter((row: LedgerAttemptRow) => row.client_request_id === requestId);
  assert.equal(rows.length, 1, `one ledger row for ${requestId}`);
  return { response, row: rows[0]! };
}

describe('embeddings usage_source', () => {
  test('Gemini (no usage reported, estimated by the adapter): estimated, with the estimate billed', async () => {
    for (const input of ['hello world', ['hello world', 'a second, longer text to embed']]) {
      const { response, row } = await embed('gemini-embed', input);
      assert.equal(row.usage_source, 'estimated');
      assert.equal(row.provider, 'gemini');
      assert.ok(response.usage.prompt_tokens > 0);
      assert.equal(row.prompt_tokens, response.usage.prompt_tokens);
    }
  });

  test('OpenAI (usage reported): upstream, with the upstream’s count billed', async () => {
    const { response, row } = await embed('openai-embed', 'hello world');
    assert.equal(row.usage_source, 'upstream');
    assert.equal(row.provider, 'up');
    assert.equal(row.prompt_tokens, response.usage.prompt_tokens);
  });

  test('the client sees the same OpenAI shape from both: no marker, no extra field', async () => {
    for (const model of ['gemini-embed', 'openai-embed']) {
      const res = await fetch(`${gw.baseUrl}/embeddings`, {
        method: 'POST',
        headers: { authorization: `Bearer ${gw.masterKey}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model, input: 'hello world' }),
      });
      assert.equal(res.status, 200);
      const body = (await res.json()) as Record<string, unknown>;
      assert.deepEqual(Object.keys(body).sort(), ['data', 'model', 'object', 'usage'], model);
      assert.deepEqual(Object.keys(body['usage'] as object).sort(), ['prompt_tokens', 'total_tokens'], model);
    }
  });
});
