/**
 * Cost per attempt (`cost_micros`, integer micro-dollars) from real usage and
 * one price table: for each provider format a streamed exchange costs what
 * the same exchange unstreamed does; prompt-cache reads and writes are priced
 * at their own rates; `x-switchyard-cost-usd` says it; an unknown model's
 * cost is null, never 0; config's `pricing` overrides the built-in table.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { type MockAnthropic, startMockAnthropic } from '../helpers/mock-anthropic.ts';
import { type MockGemini, startMockGemini } from '../helpers/mock-gemini.ts';
import { type MockUpstream, startMockUpstream } from '../helpers/mock-upstream.ts';

const KEY = 'sk-CANARY-cost-0123456789';

let openai: MockUpstream;
let claude: MockAnthropic;
let gemini: MockGemini;
let gw: TestGateway;

before(async () => {
  [openai, claude, gemini] = await Promise.all([
    startMockUpstream(),
    startMockAnthropic({ requireApiKey: KEY }),
    startMockGemini({ requireApiKey: KEY }),
  ]);
  const one = (provider: string, model: string) => ({
    targets: [{ provider, model }],
    retries: { max: 0 },
    circuit_breaker: { enabled: false },
  });
  gw = await startTestGateway({
    config: {
      providers: {
        oai: { type: 'openai', base_url: openai.baseUrl, api_key: KEY },
        claude: { type: 'anthropic', api_key: KEY, base_url: claude.url },
        gemini: { type: 'gemini', api_key: KEY, base_url: gemini.url },
      },
      pricing: { 'house-model': { input: 1, output: 2 }, 'gpt-4.1': { input: 3, output: 5 } },
      models: {
        mini: one('oai', 'gpt-4o-mini'),
        cachedmini: { ...one('oai', 'gpt-4o-mini'), cache: { enabled: true } },
        overridden: one('oai', 'gpt-4.1'),
        house: one('oai', 'house-model'),
        unknown: one('oai', 'no-price-model'),
        sonnet: one('claude', 'claude-sonnet-4-5'),
        flash: one('gemini', 'gemini-2.5-flash'),
      },
    },
  });
});
after(async () => {
  await gw.close();
  await Promise.all([openai.close(), claude.close(), gemini.close()]);
});

interface Row {
  prompt_tokens: number;
  completion_tokens: number;
  cached_tokens: number;
  cost_micros: number | null;
}

async function rowOf(requestId: string): Promise<Row> {
  const { ledger, database } = gw.gateway.context;
  await ledger.flush();
  const row = await database.db
    .selectFrom('usage_ledger')
    .select(['prompt_tokens', 'completion_tokens', 'cached_tokens', 'cost_micros'])
    .where('request_id', '=', requestId)
    .executeTakeFirstOrThrow();
  return {
    prompt_tokens: Number(row.prompt_tokens),
    completion_tokens: Number(row.completion_tokens),
    cached_tokens: Number(row.cached_tokens),
    cost_micros: row.cost_micros === null ? null : Number(row.cost_micros),
  };
}

/** One chat exchange through the OpenAI route, JSON or streamed; its ledger row and cost header. */
async function exchange(
  model: string,
  content: string,
  stream: boolean,
): Promise<{ row: Row; header: string | null }> {
  const res = await fetch(`${gw.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${gw.masterKey}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model, messages: [{ role: 'user', content }], stream }),
  });
  assert.equal(res.status, 200);
  await res.text();
  return {
    row: await rowOf(String(res.headers.get('x-request-id'))),
    header: res.headers.get('x-switchyard-cost-usd'),
  };
}

const micros = (tokens: number, usdPerMTok: number) => tokens * usdPerMTok;

describe('cost per attempt', () => {
  test('OpenAI format: list price, the same streamed and not, said in the header', async () => {
    const json = await exchange('mini', 'What is the capital of France?', false);
    const streamed = await exchange('mini', 'What is the capital of France?', true);
    const expected = Math.round(
      micros(json.row.prompt_tokens, 0.15) + micros(json.row.completion_tokens, 0.6),
    );
    assert.ok(json.row.prompt_tokens > 0 && json.row.completion_tokens > 0);
    assert.equal(json.row.cost_micros, expected);
    assert.deepEqual(streamed.row, json.row, 'a streamed exchange costs what the same unstreamed one does');
    assert.equal(json.header, (expected / 1e6).toFixed(6));
    assert.equal(streamed.header, null, 'a stream sends its headers before its cost is known');
  });

  test('Anthropic format: cache reads and writes at their own rates, streamed or not', async () => {
    claude.enqueue({ cacheRead: 1000, cacheCreation: 400 }, { cacheRead: 1000, cacheCreation: 400 });
    const json = await exchange('sonnet', 'Summarise this contract.', false);
    const streamed = await exchange('sonnet', 'Summarise this contract.', true);
    assert.equal(json.row.cached_tokens, 1000);
    const uncached = json.row.prompt_tokens - 1000 - 400;
    assert.ok(uncached > 0);
    const expected = Math.round(
      micros(uncached, 3) + micros(1000, 0.3) + micros(400, 3.75) + micros(json.row.completion_tokens, 15),
    );
    assert.equal(json.row.cost_micros, expected);
    assert.deepEqual(streamed.row, json.row);
  });

  test('Gemini format: the same streamed and not', async () => {
    const json = await exchange('flash', 'Name three rivers.', false);
    const streamed = await exchange('flash', 'Name three rivers.', true);
    assert.equal(
      json.row.cost_micros,
      Math.round(micros(json.row.prompt_tokens, 0.3) + micros(json.row.completion_tokens, 2.5)),
    );
    assert.deepEqual(streamed.row, json.row);
  });

  test("config's pricing overrides and extends the table; an unknown model costs null, not 0", async () => {
    const overridden = await exchange('overridden', 'hello', false);
    assert.equal(
      overridden.row.cost_micros,
      Math.round(micros(overridden.row.prompt_tokens, 3) + micros(overridden.row.completion_tokens, 5)),
    );
    const house = await exchange('house', 'hello', false);
    assert.equal(house.row.cost_micros, house.row.prompt_tokens + 2 * house.row.completion_tokens);
    const unknown = await exchange('unknown', 'hello', false);
    assert.equal(unknown.row.cost_micros, null);
    assert.equal(unknown.header, null);
  });

  test('a cache hit costs 0 and counts what its answer cost as saved', async () => {
    const miss = await exchange('cachedmini', 'What is the speed of light?', false);
    assert.ok((miss.row.cost_micros ?? 0) > 0);
    const hit = await exchange('cachedmini', 'What is the speed of light?', false);
    assert.equal(hit.row.cost_micros, 0);
    assert.equal(hit.header, '0.000000');
    const metrics = await (await fetch(`${gw.url}/metrics`)).text();
    const saved = Number(/^switchyard_cache_usd_saved_total (\S+)/m.exec(metrics)?.[1]);
    assert.equal(Math.round(saved * 1e6), miss.row.cost_micros);
  });
});
