/**
 * Budgets of keys on one gateway: a request is refused with 402
 * `budget_exceeded` (OpenAI's `insufficient_quota`; Anthropic's
 * `billing_error`) before any upstream call once its key's window has no room
 * for its estimated cost; what a request really cost is what is spent; the
 * 80% alert is logged and counted once per window, and sent as a signed
 * webhook (Standard Webhooks, retried under the same id); PATCH changes a budget.
 *
 * Prices: the mock model at $1,000 per million tokens (1,000 micro-dollars a
 * token), so "ping" with max_tokens 1 (4 prompt + 1 completion tokens) costs
 * exactly $0.005, estimated and real alike.
 */
import assert from 'node:assert/strict';
import { createHmac, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { eventually } from '../conformance/harness.ts';
import { registerSecret, startTestGateway, type TestGateway } from '../helpers/gateway.ts';

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

describe('the 80% alert as a signed webhook', () => {
  const secret = `whsec_${randomBytes(24).toString('base64')}`;
  const deliveries: Array<{ headers: Record<string, string | string[] | undefined>; body: string }> = [];
  let receiver: Server;
  let hooked: TestGateway;
  before(async () => {
    registerSecret(secret);
    receiver = createServer((req, res) => {
      let body = '';
      req.on('data', (chunk: Buffer) => {
        body += chunk.toString();
      });
      req.on('end', () => {
        deliveries.push({ headers: req.headers, body });
        // The first delivery fails: the retry must carry the same webhook-id.
        res.writeHead(deliveries.length === 1 ? 500 : 204).end();
      });
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    const { port } = receiver.address() as AddressInfo;
    hooked = await startTestGateway({
      config: {
        pricing: { 'mock-1': { input: 1_000, output: 1_000 } },
        webhooks: { secret, alert_url: `http://127.0.0.1:${port}/hooks`, retry_schedule_s: [1] },
      },
    });
  });
  after(async () => {
    await hooked.close();
    await new Promise((resolve) => receiver.close(resolve));
  });

  /** Standard Webhooks verification, written from the spec: HMAC-SHA256 of `id.timestamp.body` with the secret's bytes. */
  const verifies = (d: (typeof deliveries)[number]) => {
    const id = String(d.headers['webhook-id']);
    const timestamp = String(d.headers['webhook-timestamp']);
    const key = Buffer.from(secret.slice('whsec_'.length), 'base64');
    const expected = createHmac('sha256', key).update(`${id}.${timestamp}.${d.body}`).digest('base64');
    return String(d.headers['webhook-signature'])
      .split(' ')
      .some((sig) => sig === `v1,${expected}`);
  };

  test('sent once per window, signed, retried under the same id when the endpoint fails', async () => {
    const res = await fetch(`${hooked.url}/admin/keys`, {
      method: 'POST',
      headers: { authorization: `Bearer ${hooked.masterKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'hooked', budget: { daily_usd: 0.02 } }),
    });
    const { id, key } = (await res.json()) as { id: string; key: string };
    const statuses: number[] = [];
    for (let i = 0; i < 6; i++) {
      const answer = await fetch(`${hooked.baseUrl}/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'mock', max_tokens: 1, messages: [{ role: 'user', content: 'ping' }] }),
      });
      await answer.arrayBuffer();
      statuses.push(answer.status);
    }
    assert.deepEqual(statuses, [200, 200, 200, 200, 402, 402]);
    await eventually('the alert and its retry delivered', () => deliveries.length >= 2, { timeoutMs: 5_000 });
    assert.equal(deliveries.length, 2, 'one alert, delivered twice (a failure, then its retry)');
    assert.equal(deliveries[0]!.headers['webhook-id'], deliveries[1]!.headers['webhook-id']);
    assert.ok(deliveries.every(verifies), 'every delivery verifies with the secret');
    const event = JSON.parse(deliveries[1]!.body) as { type: string; data: Record<string, unknown> };
    assert.equal(event.type, 'budget.alert');
    assert.deepEqual(
      [event.data['subject'], event.data['window'], event.data['budget_usd'], event.data['spent_usd']],
      [`key:${id}`, `day:${new Date().toISOString().slice(0, 10)}`, 0.02, 0.02],
    );
    assert.ok(!readFileSync(hooked.logFile, 'utf8').includes(secret.slice(6)), 'the secret is never logged');
  });
});
