/**
 * Embedding micro-batching end to end (config `models.<name>.batching`): the
 * official `openai` SDK sends single-input embeddings concurrently, under two
 * virtual keys; the gateway coalesces them into shared upstream calls to an
 * OpenAI-compatible mock whose vectors depend on the input text, so each
 * caller can check it got its own. Then each caller's ledger row is checked:
 * one per caller, under its key, billing what its response says, and the
 * rows of each upstream call summing to that call's usage.
 *
 * `max_wait_ms` is long here so that how many calls are made depends on
 * `max_batch` alone, not on how fast 1,000 HTTP requests reach the gateway on
 * a busy machine: 1,000 is ten full batches, each sent the moment it fills.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import OpenAI from 'openai';
import { registerSecret, startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import {
  countWords,
  embeddingVector,
  type MockUpstream,
  startMockUpstream,
} from '../helpers/mock-upstream.ts';

const UPSTREAM_KEY = `sk-upstream-${randomBytes(12).toString('hex')}`;
registerSecret(UPSTREAM_KEY);
const DIMS = 8;

let upstream: MockUpstream;
let gw: TestGateway;

before(async () => {
  upstream = await startMockUpstream({ requireApiKey: UPSTREAM_KEY });
  const targets = [{ provider: 'up', model: 'text-embedding-3-small' }];
  gw = await startTestGateway({
    config: {
      providers: { up: { type: 'openai', api_key: UPSTREAM_KEY, base_url: upstream.baseUrl } },
      models: {
        embed: { targets, retries: { max: 0 }, batching: { enabled: true, max_wait_ms: 60_000 } },
        five: {
          targets,
          retries: { max: 0 },
          batching: { enabled: true, max_batch: 5, max_wait_ms: 60_000 },
        },
      },
    },
  });
});

after(async () => {
  await gw?.close();
  await upstream?.close();
});

async function createKey(name: string): Promise<{ id: string; key: string }> {
  const res = await fetch(`${gw.url}/admin/keys`, {
    method: 'POST',
    headers: { authorization: `Bearer ${gw.masterKey}`, 'content-type': 'application/json' },
    body: JSON.stringify({ name }),
  });
  assert.equal(res.status, 201);
  const created = (await res.json()) as { id: string; key: string };
  registerSecret(created.key);
  return created;
}

function client(key: string): OpenAI {
  return new OpenAI({ baseURL: gw.baseUrl, apiKey: key, maxRetries: 0 });
}

interface Row {
  client_request_id: string | null;
  key_id: string | null;
  status: string;
  prompt_tokens: number;
  usage_source: string;
}

async function rowsFor(prefix: string): Promise<Row[]> {
  const { ledger, database } = gw.gateway.context;
  await ledger.flush();
  const rows = await database.db
    .selectFrom('usage_ledger')
    .select(['client_request_id', 'key_id', 'status', 'prompt_tokens', 'usage_source'])
    .where('client_request_id', 'like', `${prefix}%`)
    .execute();
  return rows as Row[];
}

/** The upstream's embeddings calls since the last reset, with their inputs. */
function upstreamCalls(): string[][] {
  return upstream.requests
    .filter((r) => r.path.endsWith('/embeddings'))
    .map((r) => (r.body as { input: string[] }).input);
}

const vectorOf = (embedding: unknown): number[] => Array.from(embedding as ArrayLike<number>);

describe('embedding micro-batching through the openai SDK', () => {
  test('1,000 concurrent single embeddings: at most 12 upstream calls, each caller its own vector and row', async () => {
    const keys = [await createKey('batching-a'), await createKey('batching-b')];
    const clients = keys.map((k) => client(k.key));
    upstream.reset();
    const n = 1_000;
    const inputs = Array.from({ length: n }, (_, i) => `caller ${i} asks${' again'.repeat(i % 9)}`);
    const answers = await Promise.all(
      inputs.map((input, i) =>
        clients[i % 2]!.embeddings.create(
          // Both single-input shapes: a string, and a one-element array.
          { model: 'embed', input: i % 3 === 0 ? [input] : input },
          { headers: { 'x-request-id': `emb-batch-${i}` } },
        ),
      ),
    );

    const calls = upstreamCalls();
    assert.ok(calls.length <= 12, `${calls.length} upstream calls`);
    assert.ok(
      calls.every((c) => c.length <= 100),
      'no call above max_batch',
    );
    assert.deepEqual(calls.flat().sort(), [...inputs].sort(), 'every input sent upstream exactly once');

    answers.forEach((answer, i) => {
      assert.equal(answer.model, 'embed');
      assert.equal(answer.data.length, 1);
      assert.equal(answer.data[0]?.index, 0);
      assert.deepEqual(vectorOf(answer.data[0]?.embedding), embeddingVector(inputs[i]!, DIMS), `caller ${i}`);
    });

    const rows = await rowsFor('emb-batch-');
    assert.equal(rows.length, n, 'one ledger row per caller');
    const byCaller = new Map(rows.map((r) => [Number(r.client_request_id!.slice('emb-batch-'.length)), r]));
    assert.equal(byCaller.size, n);
    for (const [i, row] of byCaller) {
      assert.equal(row.status, 'ok');
      assert.equal(row.usage_source, 'upstream');
      assert.equal(row.key_id, keys[i % 2]!.id, 'billed to its own key');
      assert.equal(row.prompt_tokens, answers[i]!.usage.prompt_tokens, 'the row bills what its answer says');
    }
    // The mock's usage for a call is the words of its inputs: each call's rows add up to it exactly.
    const callerOf = new Map(inputs.map((input, i) => [input, i]));
    for (const call of calls) {
      const billed = call.reduce((sum, input) => sum + byCaller.get(callerOf.get(input)!)!.prompt_tokens, 0);
      const upstreamUsage = call.reduce((sum, input) => sum + countWords(input), 0);
      assert.equal(billed, upstreamUsage, 'the shares of one call sum to its usage');
    }
  });

  test('a failed upstream call fails each of its callers, in the OpenAI error shape', async () => {
    const api = client(gw.masterKey);
    upstream.reset();
    upstream.enqueue({ kind: 'status', status: 500, path: '/embeddings' });
    const outcomes = await Promise.allSettled(
      Array.from({ length: 5 }, (_, i) => api.embeddings.create({ model: 'five', input: `text ${i}` })),
    );
    assert.equal(upstreamCalls().length, 1);
    for (const outcome of outcomes) {
      assert.equal(outcome.status, 'rejected');
      const error = (outcome as PromiseRejectedResult).reason;
      assert.ok(error instanceof OpenAI.APIError, String(error));
      assert.equal(error.status, 502);
      assert.equal(error.type, 'upstream_error');
      assert.equal(typeof error.message, 'string');
    }
  });

  test('an input the upstream refuses fails its caller alone; the others get their vectors', async () => {
    const api = client(gw.masterKey);
    upstream.reset();
    // The shared call is refused for an input, then so is the first request sent on its own.
    const refusal = { kind: 'status', status: 400, path: '/embeddings', error: { param: 'input' } } as const;
    upstream.enqueue(refusal, refusal);
    const inputs = Array.from({ length: 5 }, (_, i) => `input number ${i}`);
    const outcomes = await Promise.allSettled(
      inputs.map((input) => api.embeddings.create({ model: 'five', input, encoding_format: 'float' })),
    );
    const calls = upstreamCalls();
    assert.equal(calls.length, 6, 'the shared call, then one per request');
    assert.equal(calls[0]?.length, 5);
    const refused = outcomes.filter((o) => o.status === 'rejected');
    assert.equal(refused.length, 1);
    const error = (refused[0] as PromiseRejectedResult).reason;
    assert.ok(error instanceof OpenAI.BadRequestError, String(error));
    assert.equal(error.param, 'input');
    outcomes.forEach((outcome, i) => {
      if (outcome.status === 'fulfilled') {
        assert.deepEqual(outcome.value.data[0]?.embedding, embeddingVector(inputs[i]!, DIMS));
      }
    });
  });
});
