/**
 * A claim that finds nothing due (an idle worker's poll, every queue every
 * poll_ms) takes no write lock: on SQLite it answers while another connection
 * holds the database's write lock, where an UPDATE would wait out the busy
 * timeout and fail. A due job is still claimed, under a token of its own.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { SqlJobStore } from '../../src/jobs/sql-job-store.ts';
import { migrate } from '../../src/store/migrations.ts';
import { type Database, openDatabase } from '../../src/store/sql.ts';
import { openSqliteConnection } from '../../src/store/sqlite-driver.ts';

describe('SqlJobStore.claim polls without the write lock', () => {
  let dataDir: string;
  let database: Database;
  let store: SqlJobStore;

  before(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'switchyard-claim-'));
    database = await openDatabase({ dataDir });
    await migrate(database);
    store = new SqlJobStore(database);
  });

  after(async () => {
    await database.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  const job = (id: string, runAt: number) => ({
    id,
    queue: 'fast' as const,
    priority: 0,
    payload: '{}',
    maxAttempts: 3,
    backoffMs: 1_000,
    now: runAt,
  });

  it('finds nothing due while another connection holds the write lock, then claims what is due', async () => {
    // Queued, but not due for an hour (a retry waiting out its backoff).
    await store.insert(job('later', Date.now() + 3_600_000));
    const holder = openSqliteConnection(database.sqlitePath!, { busyTimeoutMs: 0 });
    holder.exec('begin immediate');
    try {
      const empty = await store.claim('heavy', 4, 30_000);
      assert.deepEqual(empty.rows, []);
      const notDue = await store.claim('fast', 4, 30_000);
      assert.deepEqual(notDue.rows, []);
    } finally {
      holder.exec('rollback');
      holder.close();
    }

    await store.insert(job('now', Date.now() - 1));
    const claimed = await store.claim('fast', 4, 30_000);
    assert.deepEqual(
      claimed.rows.map((row) => [row.id, row.status, row.lock_token]),
      [['now', 'active', claimed.token]],
    );
    assert.ok(claimed.token.length > 0);
    const again = await store.claim('fast', 4, 30_000);
    assert.deepEqual(again.rows, [], 'a claimed job is not claimed twice; the later one is still not due');
  });
});
