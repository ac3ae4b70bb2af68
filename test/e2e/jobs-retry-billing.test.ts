/**
 * A job retried after an upstream failure is another request the provider
 * bills: each attempt has ledger rows of its own (`job_…`, then `job_….2`),
 * so the successful call's usage is not lost on the failed attempt's key.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { type MockUpstream, startMockUpstream } from '../helpers/mock-upstream.ts';

let upstream: MockUpstream;
let gw: TestGateway;
before(async () => {
  upstream = await startMockUpstream();
  gw = await startTestGateway({
    config: {
      providers: { up: { type: 'openai', base_url: upstream.baseUrl, api_key: 'k' } },
      // No retries inside the request: the job's own retry makes the second call.
      models: { up: { targets: [{ provider: 'up', model: 'gpt-4o-mini' }], retries: { max: 0 } } },
      jobs: { backoff_ms: 0 },
    },
  });
});
after(async () => {
  await gw?.close();
  await upstream?.close();
});

test('an attempt failed upstream and its successful retry are both in the ledger, each once', async () => {
  upstream.enqueue({ kind: 'status', status: 500 });
  const res = await fetch(`${gw.url}/v1/jobs`, {
    method: 'POST',
    headers: { authorization: `Bearer ${gw.masterKey}`, 'content-type': 'application/json' },
    body: JSON.stringify({
      request: { model: 'up', messages: [{ role: 'user', content: 'second time lucky' }] },
    }),
  });
  assert.equal(res.status, 202);
  const { id } = (await res.json()) as { id: string };
  let job: { status: string; attempts: number; result: { status_code: number } } | undefined;
  for (let i = 0; i < 400 && job?.status !== 'completed'; i++) {
    if (i > 0) await new Promise((resolve) => setTimeout(resolve, 25));
    const read = await fetch(`${gw.url}/v1/jobs/${id}`, {
      headers: { authorization: `Bearer ${gw.masterKey}` },
    });
    job = (await read.json()) as typeof job;
  }
  assert.equal(job?.status, 'completed');
  assert.equal(job?.attempts, 2);
  assert.equal(job?.result.status_code, 200);
  await gw.gateway.context.ledger.flush();
  const rows = await gw.gateway.context.database.db
    .selectFrom('usage_ledger')
    .select(['request_id', 'status', 'completion_tokens'])
    .where('request_id', 'like', `${id}%`)
    .orderBy('request_id')
    .execute();
  assert.deepEqual(
    rows.map((r) => [r.request_id, r.status]),
    [
      [id, 'error'],
      [`${id}.2`, 'ok'],
    ],
  );
  assert.ok(rows[1]!.completion_tokens > 0, 'the successful call is billed');
});
