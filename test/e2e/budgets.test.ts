/**
 * Budgets of keys on one gateway: a request is refused with 402
 * `budget_exceeded` (OpenAI's `insufficient_quota`; Anthropic's
 * `billing_error`) before any upstream call once its key's window has no room
 * for its estimated cost; what a request really cost is what is spent; the
 * 80% alert is logged and counted once per window; PATCH changes a budget.
 *
 * Prices: the mock model at $1,000 per million tokens (1,000 micro-dollars a
 * token), so "ping" with max_tokens 1 (4 prompt + 1 completion tokens) costs
 * exactly $0.005, estimated and real alike.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts';

let gw: TestGateway;

before(async () => {
  gw = await startTestGateway({ config: { pricing: { 'mock-1': { input: 1_000, output: 1_000 } } } });
});
after(() => gw.close());

async function newKey(budget: Record<string, number>): Promise<{ id: string; key: string }> {
  const res = await fetch(`${gw.url}/admin/keys`, {
    method: 'POST',
    headers: { authorization: `Bearer ${gw.masterKey}`, 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'budgeted', budget }),
  });
  assert.equal(res.status, 201);
  return (await res.json()) as { id: string; key: string };
}

async function chat(key: string, maxTokens = 1): Promise<Response> {
  const res = await fetch(`${gw.baseUrl}/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({
      model: 'mock',
      max_tokens: maxTokens,
      messages: [{ role: 'user', content: 'ping' }],
    }),
  });
  return res;
}

const alertLines = (keyId: string) =>
  readFileSync(gw.logFile, 'utf8')
    .split('\n')
    .filter((line) => line.includes('budget alert') && line.includes(keyId));

describe('a key with a daily budget', () => {
  test('spends until the window has no room, then 402 before any upstream call; the 80% alert fires once', async () => {
    // $0.02: four requests of $0.005.
    const { id, key } = await newKey({ daily_usd: 0.02 });
    const statuses: number[] = [];
    const costs: string[] = [];
    for (let i = 0; i < 6; i++) {
      const res = await chat(key);
      statuses.push(res.status);
      if (res.status === 200) costs.push(res.headers.get('x-switchyard-cost-usd')!);
      if (res.status === 402) {
        const body = (await res.json()) as { error: { type: string; code: string; message: string } };
        assert.equal(body.error.type, 'insufficient_quota');
        assert.equal(body.error.code, 'budget_exceeded');
        assert.match(body.error.message, /daily budget of \$0\.02/);
      } else await res.arrayBuffer();
    }
    assert.deepEqual(statuses, [200, 200, 200, 200, 402, 402]);
    assert.deepEqual(costs, ['0.005000', '0.005000', '0.005000', '0.005000']);
    // 80% ($0.016) was crossed by the fourth request; the alert said so once.
    assert.equal(alertLines(id).length, 1);
    const metrics = await (await fetch(`${gw.url}/metrics`)).text();
    assert.match(metrics, /switchyard_budget_alerts_total\{period="day"\} [1-9]/);
  });

  test('a request whose estimate does not fit is refused even when the rest of the budget is unspent', async () => {
    const { key } = await newKey({ total_usd: 0.01 });
    // 4 + 100 tokens estimated: $0.104, over $0.01.
    const res = await chat(key, 100);
    assert.equal(res.status, 402);
    await res.arrayBuffer();
    assert.equal((await chat(key)).status, 200, 'a cheaper one still fits');
  });

  test('SDKs: OpenAI raises an APIError 402 (not retried as a 429); Anthropic a billing_error', async () => {
    const { key } = await newKey({ monthly_usd: 0.005 });
    assert.equal((await chat(key)).status, 200);
    const openai = new OpenAI({ apiKey: key, baseURL: gw.baseUrl, maxRetries: 2 });
    await assert.rejects(
      openai.chat.completions.create({
        model: 'mock',
        max_tokens: 1,
        messages: [{ role: 'user', content: 'ping' }],
      }),
      (error: unknown) => error instanceof OpenAI.APIError && error.status === 402,
    );
    const anthropic = new Anthropic({ apiKey: key, baseURL: gw.url, maxRetries: 0 });
    await assert.rejects(
      anthropic.messages.create({
        model: 'mock',
        max_tokens: 1,
        messages: [{ role: 'user', content: 'ping' }],
      }),
      (error: unknown) =>
        error instanceof Anthropic.APIError &&
        error.status === 402 &&
        (error.error as { error: { type: string } }).error.type === 'billing_error',
    );
  });

  test('PATCH raises the budget at once; null removes it', async () => {
    const { id, key } = await newKey({ daily_usd: 0.005 });
    assert.equal((await chat(key)).status, 200);
    assert.equal((await chat(key)).status, 402);
    const patch = async (budget: unknown) =>
      fetch(`${gw.url}/admin/keys/${id}`, {
        method: 'PATCH',
        headers: { authorization: `Bearer ${gw.masterKey}`, 'content-type': 'application/json' },
        body: JSON.stringify({ budget }),
      });
    const raised = await patch({ daily_usd: 0.01 });
    assert.equal(raised.status, 200);
    assert.deepEqual(((await raised.json()) as { budget: unknown }).budget, { daily_usd: 0.01 });
    assert.equal(
      (await chat(key)).status,
      200,
      'the day so far ($0.005) is remembered, and $0.005 more fits',
    );
    assert.equal((await chat(key)).status, 402);
    assert.equal((await patch(null)).status, 200);
    assert.equal((await chat(key)).status, 200);
    assert.equal((await patch({ daily_usd: -1 })).status, 400);
  });
});
