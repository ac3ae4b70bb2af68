/**
 * OpenAI's Files and Batch API through the official SDK: upload a JSONL file,
 * create a batch, poll it, download the output; on the SQL queue and on
 * BullMQ (real Redis). Every line goes through the gateway's own pipeline as
 * the key that created the batch (its ledger rows say so).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import OpenAI, { toFile } from 'openai';
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { type RedisService, startRedis } from '../helpers/services.ts';

const LINES = 1_000;

function batchFile(lines: number, model = 'mock'): string {
  const out: string[] = [];
  for (let i = 0; i < lines; i++) {
    out.push(
      JSON.stringify({
        custom_id: `req-${i}`,
        method: 'POST',
        url: '/v1/chat/completions',
        body: { model, messages: [{ role: 'user', content: `question ${i}` }] },
      }),
    );
  }
  return `${out.join('\n')}\n`;
}

/** Polls the batch as a client would, until it reaches a final status (bounded). */
async function waitForBatch(client: OpenAI, id: string): Promise<OpenAI.Batches.Batch> {
  for (let i = 0; i < 1_200; i++) {
    const batch = await client.batches.retrieve(id);
    if (['completed', 'failed', 'expired', 'cancelled'].includes(batch.status)) return batch;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`batch ${id} did not finish`);
}

async function newKey(gw: TestGateway, name: string): Promise<string> {
  const res = await fetch(`${gw.url}/admin/keys`, {
    method: 'POST',
    headers: { authorization: `Bearer ${gw.masterKey}`, 'content-type': 'application/json' },
    body: JSON.stringify({ name }),
  });
  assert.equal(res.status, 201);
  return ((await res.json()) as { key: string }).key;
}

function suite(name: string, extraConfig: () => Record<string, unknown>): void {
  describe(`batch API (${name})`, () => {
    let gw: TestGateway;
    let key: string;
    let client: OpenAI;
    before(async () => {
      gw = await startTestGateway({
        config: {
          providers: { mock: { type: 'mock' }, slowmock: { type: 'mock', latency_ms: 20 } },
          models: {
            mock: { targets: [{ provider: 'mock', model: 'mock-1' }] },
            slow: { targets: [{ provider: 'slowmock', model: 'mock-1' }] },
          },
          ...extraConfig(),
          jobs: { batches: { line_concurrency: 2 }, ...(extraConfig().jobs as object | undefined) },
        },
      });
      key = await newKey(gw, 'batcher');
      client = new OpenAI({ baseURL: gw.baseUrl, apiKey: key, maxRetries: 0 });
    });
    after(() => gw?.close());

    test(`a ${LINES}-line batch completes with one correct output line per input`, async () => {
      const file = await client.files.create({
        file: await toFile(Buffer.from(batchFile(LINES)), 'input.jsonl'),
        purpose: 'batch',
      });
      assert.equal(file.object, 'file');
      assert.equal(file.purpose, 'batch');
      assert.equal(file.filename, 'input.jsonl');
      const created = await client.batches.create({
        input_file_id: file.id,
        endpoint: '/v1/chat/completions',
        completion_window: '24h',
        metadata: { purpose: 'test' },
      });
      assert.equal(created.object, 'batch');
      assert.ok(['validating', 'in_progress'].includes(created.status));
      const batch = await waitForBatch(client, created.id);
      assert.equal(batch.status, 'completed', JSON.stringify(batch.errors));
      assert.deepEqual(batch.request_counts, { total: LINES, completed: LINES, failed: 0 });
      assert.equal(batch.error_file_id, null);
      assert.deepEqual(batch.metadata, { purpose: 'test' });
      const text = await (await client.files.content(batch.output_file_id!)).text();
      const lines = text.trimEnd().split('\n');
      assert.equal(lines.length, LINES);
      const seen = new Set<string>();
      for (const line of lines) {
        const out = JSON.parse(line) as {
          id: string;
          custom_id: string;
          response: { status_code: number; request_id: string; body: OpenAI.ChatCompletion };
          error: null;
        };
        assert.ok(out.id.startsWith('batch_req_'));
        assert.equal(out.error, null);
        assert.equal(out.response.status_code, 200);
        const i = out.custom_id.slice('req-'.length);
        assert.equal(out.response.body.choices[0]?.message.content, `Mock reply to: question ${i}`);
        seen.add(out.custom_id);
      }
      assert.equal(seen.size, LINES);
      // Every line was a request of this key, billed once.
      const { rows } = await usageOf(gw, created.id);
      assert.equal(rows, LINES);
    });

    test('a file with bad lines fails validation with the lines named', async () => {
      const good = JSON.stringify({
        custom_id: 'a',
        method: 'POST',
        url: '/v1/chat/completions',
        body: { model: 'mock' },
      });
      const text = [
        good,
        '{not json',
        JSON.stringify({ custom_id: 'a', method: 'POST', url: '/v1/chat/completions', body: {} }),
        JSON.stringify({ custom_id: 'b', method: 'GET', url: '/v1/chat/completions', body: {} }),
        JSON.stringify({ custom_id: 'c', method: 'POST', url: '/v1/embeddings', body: {} }),
      ].join('\n');
      const file = await client.files.create({
        file: await toFile(Buffer.from(text), 'bad.jsonl'),
        purpose: 'batch',
      });
      const created = await client.batches.create({
        input_file_id: file.id,
        endpoint: '/v1/chat/completions',
        completion_window: '24h',
      });
      const batch = await waitForBatch(client, created.id);
      assert.equal(batch.status, 'failed');
      const errors = batch.errors?.data ?? [];
      assert.deepEqual(
        errors.map((e) => [e.line, e.code]),
        [
          [2, 'invalid_json_line'],
          [3, 'duplicate_custom_id'],
          [4, 'invalid_method'],
          [5, 'mismatched_endpoint'],
        ],
      );
    });

    test('a line the gateway refuses goes to the error file; the others to the output', async () => {
      const text = [
        JSON.stringify({
          custom_id: 'ok',
          method: 'POST',
          url: '/v1/chat/completions',
          body: { model: 'mock', messages: [{ role: 'user', content: 'hi' }] },
        }),
        JSON.stringify({
          custom_id: 'nope',
          method: 'POST',
          url: '/v1/chat/completions',
          body: { model: 'no-such-model', messages: [{ role: 'user', content: 'hi' }] },
        }),
      ].join('\n');
      const file = await client.files.create({
        file: await toFile(Buffer.from(text), 'mixed.jsonl'),
        purpose: 'batch',
      });
      const created = await client.batches.create({
        input_file_id: file.id,
        endpoint: '/v1/chat/completions',
        completion_window: '24h',
      });
      const batch = await waitForBatch(client, created.id);
      assert.equal(batch.status, 'completed');
      assert.deepEqual(batch.request_counts, { total: 2, completed: 1, failed: 1 });
      const output = JSON.parse((await (await client.files.content(batch.output_file_id!)).text()).trim());
      assert.equal(output.custom_id, 'ok');
      const error = JSON.parse((await (await client.files.content(batch.error_file_id!)).text()).trim());
      assert.equal(error.custom_id, 'nope');
      assert.equal(error.response.status_code, 404);
      assert.equal(error.response.body.error.code, 'model_not_found');
    });

    test("another key sees neither the file nor the batch; list shows a key's own", async () => {
      const file = await client.files.create({
        file: await toFile(Buffer.from(batchFile(2)), 'mine.jsonl'),
        purpose: 'batch',
      });
      const created = await client.batches.create({
        input_file_id: file.id,
        endpoint: '/v1/chat/completions',
        completion_window: '24h',
      });
      const other = new OpenAI({ baseURL: gw.baseUrl, apiKey: await newKey(gw, 'other'), maxRetries: 0 });
      await assert.rejects(other.files.retrieve(file.id), (e: unknown) => e instanceof OpenAI.NotFoundError);
      await assert.rejects(other.files.content(file.id), (e: unknown) => e instanceof OpenAI.NotFoundError);
      await assert.rejects(
        other.batches.retrieve(created.id),
        (e: unknown) => e instanceof OpenAI.NotFoundError,
      );
      await assert.rejects(
        other.batches.create({
          input_file_id: file.id,
          endpoint: '/v1/chat/completions',
          completion_window: '24h',
        }),
        (e: unknown) => e instanceof OpenAI.NotFoundError,
      );
      const mine = await client.batches.list({ limit: 100 });
      assert.ok(mine.data.some((b) => b.id === created.id));
      const theirs = await other.batches.list();
      assert.equal(theirs.data.length, 0);
      await waitForBatch(client, created.id);
    });

    test('uploads are checked: purpose, UTF-8, empty', async () => {
      await assert.rejects(
        client.files.create({
          file: await toFile(Buffer.from(batchFile(1)), 'x.jsonl'),
          purpose: 'fine-tune',
        }),
        (e: unknown) => e instanceof OpenAI.BadRequestError && /purpose/.test(e.message),
      );
      await assert.rejects(
        client.files.create({
          file: await toFile(Buffer.from([0x7b, 0xff, 0xfe, 0x7d]), 'x.jsonl'),
          purpose: 'batch',
        }),
        (e: unknown) => e instanceof OpenAI.BadRequestError && /UTF-8/.test(e.message),
      );
      await assert.rejects(
        client.files.create({ file: await toFile(Buffer.alloc(0), 'x.jsonl'), purpose: 'batch' }),
        (e: unknown) => e instanceof OpenAI.BadRequestError,
      );
      // Nothing half-written is listed.
      const files = await client.files.list();
      for (const f of files.data) assert.equal(f.status, 'processed');
    });

    test('a cancelled batch stops sending lines and ends cancelled with the files of what ran', async () => {
      const file = await client.files.create({
        file: await toFile(Buffer.from(batchFile(400, 'slow')), 'cancel.jsonl'),
        purpose: 'batch',
      });
      const created = await client.batches.create({
        input_file_id: file.id,
        endpoint: '/v1/chat/completions',
        completion_window: '24h',
      });
      // Running: its worker is sending lines (20 ms each, two at a time).
      for (let i = 0; i < 400; i++) {
        if ((await client.batches.retrieve(created.id)).status === 'in_progress') break;
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      const cancelling = await client.batches.cancel(created.id);
      assert.ok(['cancelling', 'cancelled'].includes(cancelling.status), cancelling.status);
      const batch = await waitForBatch(client, created.id);
      assert.equal(batch.status, 'cancelled');
      assert.ok(batch.cancelled_at !== null && batch.cancelling_at !== null);
      const done = batch.request_counts!.completed;
      assert.ok(done < 400, `stopped early (${done} of 400 ran)`);
      if (done > 0) {
        const lines = (await (await client.files.content(batch.output_file_id!)).text())
          .trimEnd()
          .split('\n');
        assert.equal(lines.length, done);
      } else {
        assert.equal(batch.output_file_id, null);
      }
      // Cancelling a finished batch changes nothing.
      assert.equal((await client.batches.cancel(created.id)).status, 'cancelled');
    });

    test('a file is deleted with its bytes', async () => {
      const file = await client.files.create({
        file: await toFile(Buffer.from(batchFile(3)), 'gone.jsonl'),
        purpose: 'batch',
      });
      const deleted = await client.files.delete(file.id);
      assert.deepEqual(deleted, { id: file.id, object: 'file', deleted: true });
      await assert.rejects(client.files.content(file.id), (e: unknown) => e instanceof OpenAI.NotFoundError);
    });
  });
}

/** Ledger rows of a batch's lines (their request ids start with the batch id). */
async function usageOf(gw: TestGateway, batchId: string): Promise<{ rows: number }> {
  const db = gw.gateway.context.database.db;
  // The ledger writes in the background; its rows are durable before each line's answer.
  await gw.gateway.context.ledger.flush();
  const row = await db
    .selectFrom('usage_ledger')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('request_id', 'like', `${batchId}-%`)
    .executeTakeFirstOrThrow();
  return { rows: Number(row.n) };
}

suite('SQL queue', () => ({}));

let redis: RedisService | undefined;
describe('with Redis', () => {
  before(async () => {
    redis = await startRedis();
  });
  after(() => redis?.stop());
  suite('BullMQ queue', () => ({ storage: { redis_url: redis!.url }, jobs: { backend: 'redis' } }));
});
