/**
 * Graceful shutdown under load: SIGTERM while 100 requests (50 JSON, 50
 * streamed) are in flight inside a gateway process. Every request completes
 * with its full content, the listener stops taking connections while they
 * drain, the process exits 0, and the ledger holds exactly one `ok` row per
 * request — on SQLite (the data dir) and on PostgreSQL.
 *
 * The upstream is the mock behind a gate that holds every request until the
 * test releases it, so "in flight at SIGTERM" is a fact, not a timing bet.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import OpenAI from 'openai';
import { openDatabase } from '../../src/store/sql.ts';
import { type Gate, startGate } from '../fixtures/ops/gate.ts';
import { pollUntil, probe, waitReady } from '../fixtures/ops/proc.ts';
import { registerSecret, type SpawnedGateway, spawnGateway, tempDir } from '../helpers/gateway.ts';
import { type MockUpstream, startMockUpstream } from '../helpers/mock-upstream.ts';
import { createPostgresDatabase, testPostgresUrl } from '../helpers/services.ts';

const REQUESTS = 100;

interface Outcome {
  requestId: string;
  stream: boolean;
  text: string;
  expected: string;
  finishReason: string | null | undefined;
}

async function send(client: OpenAI, requestId: string, i: number, stream: boolean): Promise<Outcome> {
  const content = `request ${i} of the shutdown drain`;
  const expected = `Echo: ${content}`;
  const options = { headers: { 'x-request-id': requestId } };
  const messages = [{ role: 'user' as const, content }];
  if (!stream) {
    const completion = await client.chat.completions.create({ model: 'slow', messages }, options);
    const choice = completion.choices[0];
    return {
      requestId,
      stream,
      text: choice?.message.content ?? '',
      expected,
      finishReason: choice?.finish_reason,
    };
  }
  const chunks = await client.chat.completions.create({ model: 'slow', messages, stream: true }, options);
  let text = '';
  let finishReason: string | null | undefined;
  for await (const chunk of chunks) {
    text += chunk.choices[0]?.delta.content ?? '';
    finishReason = chunk.choices[0]?.finish_reason ?? finishReason;
  }
  return { requestId, stream, text, expected, finishReason };
}

interface LedgerRowView {
  client_request_id: string | null;
  attempt: number;
  status: string;
  http_status: number;
  stream: number;
  completion_tokens: number;
}

async function readLedger(url: string | undefined, dataDir: string): Promise<LedgerRowView[]> {
  const database = await openDatabase({ url, dataDir });
  try {
    return (await database.db
      .selectFrom('usage_ledger')
      .select(['client_request_id', 'attempt', 'status', 'http_status', 'stream', 'completion_tokens'])
      .execute()) as LedgerRowView[];
  } finally {
    await database.close();
  }
}

for (const backend of ['sqlite', 'postgres'] as const) {
  describe(`SIGTERM with ${REQUESTS} requests in flight (${backend} ledger)`, () => {
    let mock: MockUpstream;
    let gate: Gate;
    let gateway: SpawnedGateway | undefined;
    const dataDir = tempDir('switchyard-shutdown-');
    let databaseUrl: string | undefined;
    const providerKey = `sk-upstream-${randomBytes(18).toString('base64url')}`;
    registerSecret(providerKey);

    before(async () => {
      // Streams take a while once released (frames 15 ms apart), so they drain during shutdown too.
      mock = await startMockUpstream({ requireApiKey: providerKey, frameDelayMs: 15 });
      gate = await startGate(mock.url);
      if (backend === 'postgres') databaseUrl = await createPostgresDatabase(testPostgresUrl());
      gateway = await spawnGateway({
        dataDir,
        config: {
          server: { shutdown: { grace_ms: 60_000 } },
          providers: { up: { type: 'openai', base_url: `${gate.url}/v1`, api_key: providerKey } },
          models: {
            slow: {
              retries: { max: 0 },
              timeouts: { first_byte_ms: 60_000, total_ms: 120_000 },
              targets: [{ provider: 'up', model: 'gpt-4o-mini' }],
            },
          },
        },
        ...(databaseUrl ? { env: { DATABASE_URL: databaseUrl } } : {}),
      });
      await waitReady(gateway.url);
    });

    after(async () => {
      if (gateway && gateway.child.exitCode === null && gateway.child.signalCode === null) {
        gateway.kill('SIGKILL');
        await gateway.exited;
      }
      gate?.release();
      await gate?.close();
      await mock?.close();
    });

    test('every request completes, the listener closes, exit 0, one ok ledger row each', async (t) => {
      const gw = gateway!;
      const client = new OpenAI({
        baseURL: gw.baseUrl,
        apiKey: gw.masterKey,
        maxRetries: 0,
        timeout: 120_000,
      });
      const run = randomBytes(4).toString('hex');
      const pending = Array.from({ length: REQUESTS }, (_, i) =>
        send(client, `shutdown-${run}-${i}`, i, i % 2 === 1),
      );
      // Never an unhandled rejection, whatever happens below.
      const settled = Promise.allSettled(pending);

      // All 100 are inside the gateway, waiting on the upstream.
      await gate.waitFor(REQUESTS);
      assert.equal(gate.received, REQUESTS);

      gw.kill('SIGTERM');

      // Draining: readiness fails (503) or the listener is already closed.
      let saw503 = false;
      await pollUntil(
        'gateway stops being ready after SIGTERM',
        async () => {
          const r = await probe(`${gw.url}/health/ready`);
          if (r.status === 503) saw503 = true;
          return r.status === 503 || r.error !== undefined;
        },
        { attempts: 200, intervalMs: 25 },
      );
      // New connections are refused while the held requests still wait: the
      // process is alive (they cannot finish before the gate opens).
      await pollUntil(
        'new connections refused during the drain',
        async () => (await probe(`${gw.url}/health/live`)).error === 'ECONNREFUSED',
        { attempts: 200, intervalMs: 25 },
      );
      assert.equal(gw.child.exitCode, null, 'still draining while requests are held');
      assert.equal(gate.received, REQUESTS, 'no request was retried or added');

      gate.release();
      const results = await settled;
      const failures = results.filter((r) => r.status === 'rejected');
      assert.deepEqual(
        failures.map((f) => String((f as PromiseRejectedResult).reason)),
        [],
        'every client request succeeded',
      );
      for (const r of results) {
        const outcome = (r as PromiseFulfilledResult<Outcome>).value;
        assert.equal(outcome.text, outcome.expected, `${outcome.requestId} full content`);
        assert.equal(outcome.finishReason, 'stop', `${outcome.requestId} finished`);
      }

      assert.equal(await gw.exited, 0, `exit code; stderr:\n${gw.stderr()}`);
      assert.equal(mock.requests.length, REQUESTS, 'exactly one upstream call per request');
      assert.equal((await probe(`${gw.url}/health/live`)).error, 'ECONNREFUSED');

      const rows = await readLedger(databaseUrl, dataDir);
      assert.equal(rows.length, REQUESTS, 'one ledger row per request');
      const ids = new Set(rows.map((row) => row.client_request_id));
      assert.equal(ids.size, REQUESTS, 'no duplicates');
      for (let i = 0; i < REQUESTS; i++) assert.ok(ids.has(`shutdown-${run}-${i}`), `row for request ${i}`);
      assert.deepEqual(
        rows.filter((row) => row.status !== 'ok' || row.http_status !== 200),
        [],
        'every row is ok/200',
      );
      assert.equal(rows.filter((row) => Number(row.stream) === 1).length, REQUESTS / 2);
      assert.ok(
        rows.every((row) => Number(row.completion_tokens) > 0),
        'usage recorded',
      );
      // Whether a 503 was seen depends on which probe won the race with the
      // listener closing; both outcomes are correct, so it is only reported.
      t.diagnostic(`readiness 503 observed during drain: ${saw503}`);
    });
  });
}
