/**
 * kill -9 in the middle of a batch, then a restart: the batch completes with
 * no lost and no duplicated output line and no ledger row counted twice, on
 * both queue backends. The gateway runs as `switchyard start` child processes
 * sharing one data dir (SQLite) and, for BullMQ, one Redis.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { after, before, describe, test } from 'node:test';
import OpenAI, { toFile } from 'openai';
import { newMasterKey, type SpawnedGateway, spawnGateway, tempDir } from '../helpers/gateway.ts';
import { type RedisService, startRedis } from '../helpers/services.ts';

const LINES = 1_000;

function input(): Buffer {
  const lines: string[] = [];
  for (let i = 0; i < LINES; i++) {
    lines.push(
      JSON.stringify({
        custom_id: `line-${i}`,
        method: 'POST',
        url: '/v1/chat/completions',
        body: { model: 'slow', messages: [{ role: 'user', content: `crash test ${i}` }] },
      }),
    );
  }
  return Buffer.from(lines.join('\n'));
}

async function poll<T>(what: string, read: () => Promise<T>, done: (value: T) => boolean): Promise<T> {
  for (let i = 0; i < 1_200; i++) {
    const value = await read();
    if (done(value)) return value;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`${what}: not reached`);
}

function crashSuite(name: string, extra: () => Record<string, unknown>): void {
  test(`${name}: a worker killed mid-batch loses and duplicates nothing`, async () => {
    const dataDir = tempDir();
    const masterKey = newMasterKey();
    const config = () => ({
      providers: { mock: { type: 'mock', latency_ms: 25 } },
      models: { slow: { targets: [{ provider: 'mock', model: 'mock-1' }] } },
      jobs: { lease_ms: 1_000, batches: { line_concurrency: 8 } },
      ...extra(),
    });
    let gateway: SpawnedGateway = await spawnGateway({ config: config(), dataDir, masterKey });
    try {
      const admin = await fetch(`${gateway.url}/admin/keys`, {
        method: 'POST',
        headers: { authorization: `Bearer ${masterKey}`, 'content-type': 'application/json' },
        body: JSON.stringify({ name: 'batch-owner' }),
      });
      const key = ((await admin.json()) as { key: string }).key;
      let client = new OpenAI({ baseURL: gateway.baseUrl, apiKey: key, maxRetries: 0 });
      const file = await client.files.create({
        file: await toFile(input(), 'crash.jsonl'),
        purpose: 'batch',
      });
      const created = await client.batches.create({
        input_file_id: file.id,
        endpoint: '/v1/chat/completions',
        completion_window: '24h',
      });
      // Part of the batch is done (the runner reports its counts about once a second), not all of it.
      const midway = await poll(
        'some lines done',
        () => client.batches.retrieve(created.id),
        (b) => (b.request_counts?.completed ?? 0) > 0,
      );
      assert.ok(midway.request_counts!.completed < LINES, 'killed before the end');
      gateway.kill('SIGKILL');
      await gateway.exited;

      gateway = await spawnGateway({ config: config(), dataDir, masterKey });
      client = new OpenAI({ baseURL: gateway.baseUrl, apiKey: key, maxRetries: 0 });
      const batch = await poll(
        'batch finished',
        () => client.batches.retrieve(created.id),
        (b) => ['completed', 'failed', 'cancelled', 'expired'].includes(b.status),
      );
      assert.equal(batch.status, 'completed');
      assert.deepEqual(batch.request_counts, { total: LINES, completed: LINES, failed: 0 });
      const lines = (await (await client.files.content(batch.output_file_id!)).text()).trimEnd().split('\n');
      assert.equal(lines.length, LINES);
      const ids = new Set<string>();
      for (const line of lines) {
        const out = JSON.parse(line) as { custom_id: string; response: { body: OpenAI.ChatCompletion } };
        assert.equal(
          out.response.body.choices[0]?.message.content,
          `Mock reply to: crash test ${out.custom_id.slice('line-'.length)}`,
        );
        ids.add(out.custom_id);
      }
      assert.equal(ids.size, LINES, 'every input line once');
    } finally {
      gateway.kill('SIGTERM');
      await gateway.exited;
    }
    // Every line billed once: one ledger row per line's request id (the ledger's
    // spool replays the killed process's rows; a line run again lands on its own).
    const db = new DatabaseSync(join(dataDir, 'switchyard.db'), { readOnly: true });
    try {
      const row = db
        .prepare(
          "select count(*) as n, count(distinct request_id) as ids from usage_ledger where request_id like 'batch_%'",
        )
        .get() as { n: number; ids: number };
      assert.equal(row.ids, LINES);
      assert.equal(row.n, LINES);
    } finally {
      db.close();
    }
  });
}

describe('batch crash recovery', () => {
  let redis: RedisService | undefined;
  before(async () => {
    redis = await startRedis();
  });
  after(() => redis?.stop());
  crashSuite('SQL queue', () => ({}));
  crashSuite('BullMQ queue', () => ({
    storage: { redis_url: redis!.url },
    jobs: { backend: 'redis', lease_ms: 1_000, batches: { line_concurrency: 8 } },
  }));
});
