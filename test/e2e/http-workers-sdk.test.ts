/**
 * `switchyard start --workers 2`: the official SDKs' basic flows against two
 * HTTP worker processes on one port, and a rate limit that holds across them
 * (the windows are in the shared Redis): 30 a minute admits exactly 30 of
 * 200 requests, however the connections spread over the two workers (both
 * served some, by their log lines).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { Agent, request } from 'undici';
import { eventually } from '../conformance/harness.ts';
import { registerSecret, type SpawnedGateway, spawnGateway } from '../helpers/gateway.ts';
import { parseMetrics, total } from '../helpers/prometheus-text.ts';
import { testRedisUrl } from '../helpers/services.ts';

/** The worker numbers (1, 2) whose log lines match `filter`. */
function workersThatLogged(file: string, filter: (line: Record<string, unknown>) => boolean): Set<number> {
  const workers = new Set<number>();
  for (const text of readFileSync(file, 'utf8').split('\n')) {
    if (!text.startsWith('{')) continue;
    const line = JSON.parse(text) as Record<string, unknown>;
    if (typeof line['worker'] === 'number' && filter(line)) workers.add(line['worker']);
  }
  return workers;
}

describe('official SDKs against `switchyard start --workers 2`', () => {
  let gw: SpawnedGateway;
  let openai: OpenAI;
  let anthropic: Anthropic;

  before(async () => {
    gw = await spawnGateway({
      args: ['--workers', '2'],
      config: {
        // A prefix of its own: other test files share the runner's Redis.
        storage: { redis_url: testRedisUrl(), redis_prefix: `workers${randomBytes(4).toString('hex')}:` },
      },
    });
    openai = new OpenAI({ baseURL: gw.baseUrl, apiKey: gw.masterKey, maxRetries: 0 });
    anthropic = new Anthropic({ baseURL: gw.url, apiKey: gw.masterKey, maxRetries: 0 });
  });
  after(async () => {
    gw.kill('SIGTERM');
    const code = await gw.exited;
    // Seen once in a clean-clone run (exit 1, not reproduced in 8 runs since): say why if it recurs.
    assert.equal(code, 0, `the primary exited ${code}; its stderr ends:\n${gw.stderr().slice(-3000)}`);
  });

  /** One request on a connection of its own (`connection: close`): the primary hands connections to the workers in turn. */
  async function alone(
    path: string,
    init: { method?: string; body?: string } = {},
  ): Promise<{ status: number; text: string }> {
    const reply = await request(`${gw.url}${path}`, {
      method: (init.method ?? 'GET') as 'GET' | 'POST',
      headers: {
        authorization: `Bearer ${gw.masterKey}`,
        'content-type': 'application/json',
        connection: 'close',
      },
      ...(init.body === undefined ? {} : { body: init.body }),
    });
    return { status: reply.statusCode, text: await reply.body.text() };
  }

  /** switchyard_requests_total for answered chat completions, as one scrape reports it. */
  async function chatCount(): Promise<{ count: number; text: string }> {
    const { status, text } = await alone('/metrics');
    assert.equal(status, 200, text);
    const count = total(parseMetrics(text), 'switchyard_requests_total', {
      route: '/v1/chat/completions',
      status: '200',
    });
    return { count, text };
  }

  test('every scrape reports the whole fleet, whichever worker takes it: 20 more requests count 20 more', async () => {
    // Scrapes on connections of their own reach both workers; every one reads the same count.
    const counts: number[] = [];
    for (let i = 0; i < 4; i++) counts.push((await chatCount()).count);
    assert.equal(new Set(counts).size, 1, `scrapes disagree: ${counts.join(', ')}`);
    for (let i = 0; i < 20; i++) {
      const { status } = await alone('/v1/chat/completions', {
        method: 'POST',
        body: JSON.stringify({ model: 'mock', messages: [{ role: 'user', content: `count ${i}` }] }),
      });
      assert.equal(status, 200);
    }
    for (let i = 0; i < 4; i++) {
      const { count, text } = await chatCount();
      assert.equal(count, counts[0]! + 20);
      // Gauges keep their meaning: both workers connected to Redis is 1, not 2.
      assert.match(text, /^switchyard_redis_connected 1$/m);
    }
  });

  test('the banner says two HTTP worker processes', () => {
    assert.match(
      gw.stderr(),
      /workers: {3}2 HTTP worker processes on one port \(node:cluster, round robin; pids \d+, \d+\)/,
    );
  });

  test('openai: models list, chat, stream, embeddings', async () => {
    const models = await openai.models.list();
    assert.ok(models.data.some((m) => m.id === 'mock'));
    const completion = await openai.chat.completions.create({
      model: 'mock',
      messages: [{ role: 'user', content: 'hello world' }],
    });
    assert.equal(completion.choices[0]?.message.content, 'Mock reply to: hello world');
    const stream = await openai.chat.completions.create({
      model: 'mock',
      stream: true,
      stream_options: { include_usage: true },
      messages: [{ role: 'user', content: 'one two three' }],
    });
    let text = '';
    let usage: OpenAI.CompletionUsage | null | undefined;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta.content ?? '';
      if (chunk.usage) usage = chunk.usage;
    }
    assert.equal(text, 'Mock reply to: one two three');
    assert.equal(usage?.completion_tokens, 6);
    const embeddings = await openai.embeddings.create({ model: 'mock', input: ['a', 'b'] });
    assert.equal(embeddings.data.length, 2);
    assert.ok(embeddings.data.every((e) => Array.isArray(e.embedding) && e.embedding.length > 0));
  });

  test('anthropic: messages, streamed messages, models list', async () => {
    const message = await anthropic.messages.create({
      model: 'mock',
      max_tokens: 64,
      messages: [{ role: 'user', content: 'hello world' }],
    });
    assert.equal(message.type, 'message');
    assert.deepEqual(
      message.content.map((b) => (b.type === 'text' ? b.text : b.type)),
      ['Mock reply to: hello world'],
    );
    const streamed = await anthropic.messages
      .stream({ model: 'mock', max_tokens: 64, messages: [{ role: 'user', content: 'one two' }] })
      .finalMessage();
    assert.deepEqual(
      streamed.content.map((b) => (b.type === 'text' ? b.text : b.type)),
      ['Mock reply to: one two'],
    );
    assert.equal(streamed.stop_reason, 'end_turn');
    const models = await anthropic.models.list();
    assert.ok(models.data.some((m) => m.id === 'mock'));
  });

  test('a limit of 30 a minute admits exactly 30 of 200 requests across both workers', async () => {
    const res = await fetch(`${gw.url}/admin/keys`, {
      method: 'POST',
      headers: { authorization: `Bearer ${gw.masterKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'limited', limits: { requests_per_minute: 30 } }),
    });
    assert.equal(res.status, 201);
    const key = (await res.json()) as { id: string; key: string };
    registerSecret(key.key);
    // Twenty connections of their own: the primary hands them to the workers in turn.
    const dispatcher = new Agent({ connections: 20 });
    const statuses: Record<number, number> = {};
    let next = 0;
    try {
      await Promise.all(
        Array.from({ length: 20 }, async () => {
          while (next++ < 200) {
            const reply = await request(`${gw.baseUrl}/chat/completions`, {
              method: 'POST',
              headers: { authorization: `Bearer ${key.key}`, 'content-type': 'application/json' },
              body: JSON.stringify({ model: 'mock', messages: [{ role: 'user', content: 'ping' }] }),
              dispatcher,
            });
            await reply.body.arrayBuffer();
            statuses[reply.statusCode] = (statuses[reply.statusCode] ?? 0) + 1;
          }
        }),
      );
    } finally {
      await dispatcher.close();
    }
    assert.deepEqual(statuses, { 200: 30, 429: 170 });
    // Log lines reach the file in batches: both workers' first batches, eventually.
    await eventually(
      'both workers logged requests of the limited key',
      () =>
        workersThatLogged(gw.stdoutFile, (line) => line['msg'] === 'request' && line['keyId'] === key.id)
          .size === 2,
      { timeoutMs: 10_000, intervalMs: 50 },
    );
  });
});
