/**
 * `kill -9` under load loses no usage: 20 kills at random points (after a
 * random number of answered requests, with others in flight), each followed
 * by a restart on the same data dir and database, on SQLite and on
 * PostgreSQL. After the last clean stop, every request a client saw answered
 * (200 with its whole body, `[DONE]` for streams) has exactly one `ok` ledger
 * row, nothing is duplicated, and the spool is empty.
 *
 * The flush interval is long (5 s), so without the spool nearly every
 * answered row would still be in memory at the kill.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { Agent, request } from 'undici';
import { openDatabase } from '../../src/store/sql.ts';
import { newMasterKey, type SpawnedGateway, spawnGateway, tempDir } from '../helpers/gateway.ts';
import { createPostgresDatabase, testPostgresUrl } from '../helpers/services.ts';

const KILLS = 20;
const CONCURRENCY = 12;

interface Row {
  request_id: string;
  client_request_id: string | null;
  attempt: number;
  status: string;
}

async function readLedger(url: string | undefined, dataDir: string): Promise<Row[]> {
  const database = await openDatabase({ url, dataDir });
  try {
    return (await database.db
      .selectFrom('usage_ledger')
      .select(['request_id', 'client_request_id', 'attempt', 'status'])
      .execute()) as Row[];
  } finally {
    await database.close();
  }
}

/**
 * Sends requests from `CONCURRENCY` workers until the process dies; returns
 * the ids of those answered in full. `onAnswered` sees the running count.
 */
async function loadUntilDeath(
  gw: SpawnedGateway,
  run: string,
  onAnswered: (count: number) => void,
): Promise<string[]> {
  const answered: string[] = [];
  const dispatcher = new Agent({ connections: CONCURRENCY, pipelining: 1 });
  let alive = true;
  let n = 0;
  const worker = async () => {
    while (alive) {
      const id = `kill-${run}-${n++}`;
      const stream = n % 2 === 0;
      try {
        const res = await request(`${gw.baseUrl}/chat/completions`, {
          method: 'POST',
          dispatcher,
          headers: {
            authorization: `Bearer ${gw.masterKey}`,
            'content-type': 'application/json',
            'x-request-id': id,
          },
          body: JSON.stringify({ model: 'mock', stream, messages: [{ role: 'user', content: `hi ${id}` }] }),
        });
        const text = await res.body.text();
        const complete = stream ? text.includes('data: [DONE]') : JSON.parse(text).choices?.length === 1;
        if (res.statusCode === 200 && complete) {
          answered.push(id);
          onAnswered(answered.length);
        }
      } catch {
        // The process was killed mid-request: this one was not answered.
        alive = false;
      }
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  await dispatcher.close().catch(() => undefined);
  return answered;
}

for (const backend of ['sqlite', 'postgres'] as const) {
  describe(`kill -9 under load (${backend} ledger)`, () => {
    const dataDir = tempDir('switchyard-kill-');
    const masterKey = newMasterKey();
    let gateway: SpawnedGateway | undefined;

    after(async () => {
      if (gateway && gateway.child.exitCode === null && gateway.child.signalCode === null) {
        gateway.kill('SIGKILL');
        await gateway.exited;
      }
    });

    test(`${KILLS} kills at random points: every answered request has one ok row after restart`, async (t) => {
      const databaseUrl =
        backend === 'postgres' ? await createPostgresDatabase(testPostgresUrl()) : undefined;
      const start = () =>
        spawnGateway({
          dataDir,
          masterKey,
          config: { ledger: { flush_interval_ms: 5_000 } },
          ...(databaseUrl ? { env: { DATABASE_URL: databaseUrl } } : {}),
        });
      const answered: string[] = [];
      const killPoints: number[] = [];
      for (let kill = 0; kill < KILLS; kill++) {
        const gw = await start();
        gateway = gw;
        // A random point: after 1 to 150 answers, with up to CONCURRENCY - 1 others in flight.
        const killAt = 1 + Math.floor(Math.random() * 150);
        killPoints.push(killAt);
        const ids = await loadUntilDeath(gw, `${kill}-${randomBytes(3).toString('hex')}`, (count) => {
          if (count === killAt) gw.kill('SIGKILL');
        });
        assert.equal(await gw.exited, 'SIGKILL');
        answered.push(...ids);
      }
      t.diagnostic(`kill points (answers before each kill): ${killPoints.join(' ')}`);

      // The last start replays what the last kill left; a clean stop writes everything.
      const last = await start();
      gateway = last;
      last.kill('SIGTERM');
      assert.equal(await last.exited, 0, last.stderr());

      const rows = await readLedger(databaseUrl, dataDir);
      const okRows = new Map<string, number>();
      for (const row of rows) {
        const id = row.client_request_id ?? row.request_id;
        if (row.status === 'ok') okRows.set(id, (okRows.get(id) ?? 0) + 1);
      }
      const missing = answered.filter((id) => !okRows.has(id));
      assert.deepEqual(missing, [], `${missing.length} of ${answered.length} answered requests have no row`);
      const doubled = [...okRows].filter(([, count]) => count > 1);
      assert.deepEqual(doubled, [], 'a request billed twice');
      const keys = new Set(rows.map((r) => `${r.request_id}#${r.attempt}`));
      assert.equal(keys.size, rows.length, 'duplicate (request_id, attempt) rows');
      assert.ok(answered.length >= KILLS, `only ${answered.length} answered`);

      const left = readdirSync(join(dataDir, 'ledger-spool')).filter((name) => name.endsWith('.jsonl'));
      assert.deepEqual(left, [], 'spool files left after a clean stop');
    });
  });
}
