/**
 * `switchyard worker`: jobs queued on an API node that runs no workers of its
 * own (`jobs.workers: false`) are run by a separate worker process sharing
 * its database, through the worker's own copy of the pipeline (billed to the
 * key that queued them); `--queues` limits what a worker takes.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { test } from 'node:test';
import { newMasterKey, runCli, spawnGateway, tempDir, writeConfig } from '../helpers/gateway.ts';

async function api(url: string, key: string, method: string, path: string, body?: unknown) {
  const res = await fetch(`${url}${path}`, {
    method,
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

async function jobStatus(
  url: string,
  key: string,
  id: string,
  want: string[],
): Promise<Record<string, unknown>> {
  for (let i = 0; i < 600; i++) {
    const { body } = await api(url, key, 'GET', `/v1/jobs/${id}`);
    if (want.includes(body.status as string)) return body;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`job ${id} never reached ${want.join('/')}`);
}

test('a worker process runs the jobs an API node queues; --queues limits which', async () => {
  const dataDir = tempDir();
  const masterKey = newMasterKey();
  // The worker polls for other processes' jobs: short here so the test waits little.
  const config = { jobs: { workers: false, poll_ms: 50 } };
  const apiNode = await spawnGateway({ config, dataDir, masterKey });
  const worker = await spawnGateway({
    command: 'worker',
    args: ['--queues', 'fast'],
    config,
    dataDir,
    masterKey,
  });
  try {
    const key = (await api(apiNode.url, masterKey, 'POST', '/admin/keys', { name: 'queued' })).body
      .key as string;
    const chat = await api(apiNode.url, key, 'POST', '/v1/jobs', {
      request: { model: 'mock', messages: [{ role: 'user', content: 'from another process' }] },
    });
    assert.equal(chat.status, 202);
    const done = await jobStatus(apiNode.url, key, chat.body.id as string, ['completed', 'failed']);
    assert.equal(done.status, 'completed');
    const result = done.result as { body: { choices: Array<{ message: { content: string } }> } };
    assert.equal(result.body.choices[0]?.message.content, 'Mock reply to: from another process');
    // An embeddings job waits: this worker does not take the embeddings queue, and the API node runs none.
    const emb = await api(apiNode.url, key, 'POST', '/v1/jobs', {
      endpoint: '/v1/embeddings',
      request: { model: 'mock', input: 'wait for me' },
    });
    const second = await api(apiNode.url, key, 'POST', '/v1/jobs', {
      request: { model: 'mock', messages: [{ role: 'user', content: 'after the embedding' }] },
    });
    await jobStatus(apiNode.url, key, second.body.id as string, ['completed']);
    assert.equal((await api(apiNode.url, key, 'GET', `/v1/jobs/${emb.body.id}`)).body.status, 'queued');
  } finally {
    worker.kill('SIGTERM');
    apiNode.kill('SIGTERM');
    assert.equal(await worker.exited, 0, 'the worker drains and exits 0 on SIGTERM');
    await apiNode.exited;
  }
  // The job was billed to its key, by the worker, once.
  const db = new DatabaseSync(join(dataDir, 'switchyard.db'), { readOnly: true });
  try {
    const rows = db
      .prepare("select count(*) as n from usage_ledger where request_id like 'job_%' and key_id is not null")
      .get() as { n: number };
    assert.equal(rows.n, 2);
  } finally {
    db.close();
  }
});

test('switchyard worker refuses an unknown queue with exit code 2', async () => {
  const config = writeConfig({
    providers: { mock: { type: 'mock' } },
    models: { mock: { targets: [{ provider: 'mock', model: 'mock-1' }] } },
    data_dir: tempDir(),
  });
  const run = await runCli(['worker', '--queues', 'fast,slowest', '--config', config]);
  assert.equal(run.code, 2);
  assert.match(run.stderr, /--queues takes a comma-separated list of fast, heavy, embeddings/);
});
