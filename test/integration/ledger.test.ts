/**
 * The usage ledger on SQLite and PostgreSQL: batched, idempotent, flushed on
 * close, and holding rows while the database is down.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { UsageLedger } from '../../src/ledger/usage-ledger.ts';
import { migrate } from '../../src/store/migrations.ts';
import { type Database, openDatabase } from '../../src/store/sql.ts';
import { openSqliteConnection } from '../../src/store/sqlite-driver.ts';
import { sampleLedgerRow } from '../helpers/ledger-rows.ts';
import { createPostgresDatabase, startPostgres, testPostgresUrl } from '../helpers/services.ts';

// The timer never fires during a test: flushes happen when the test asks, so
// nothing depends on timing.
const NO_TIMER = { flushIntervalMs: 3_600_000 };

const backends: { name: string; open: (dataDir: string) => Promise<Database> }[] = [
  { name: 'sqlite', open: (dataDir) => openDatabase({ dataDir }) },
  {
    name: 'postgres',
    open: async (dataDir) => openDatabase({ url: await createPostgresDatabase(testPostgresUrl()), dataDir }),
  },
];

const row = sampleLedgerRow;

async function countRows(database: Database, requestIdPrefix: string): Promise<number> {
  const result = await database.db
    .selectFrom('usage_ledger')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('request_id', 'like', `${requestIdPrefix}%`)
    .executeTakeFirstOrThrow();
  return Number(result.n);
}

function recordingLogger() {
  const lines: { level: 'warn' | 'error'; msg: string }[] = [];
  return {
    lines,
    warn: (_obj: object, msg: string) => lines.push({ level: 'warn', msg }),
    error: (_obj: object, msg: string) => lines.push({ level: 'error', msg }),
  };
}

for (const backend of backends) {
  describe(`usage ledger on ${backend.name}`, () => {
    const dataDir = mkdtempSync(join(tmpdir(), `switchyard-ledger-${backend.name}-`));
    let database: Database;

    before(async () => {
      database = await backend.open(dataDir);
      await migrate(database);
    });
    after(async () => {
      await database.close();
      rmSync(dataDir, { recursive: true, force: true });
    });

    it('writes 1,000 recorded rows on flush', async () => {
      const ledger = new UsageLedger(database, NO_TIMER);
      for (let i = 0; i < 1000; i++) ledger.record(row({ requestId: `thousand_${i}` }));
      await ledger.flush();
      assert.equal(await countRows(database, 'thousand_'), 1000);
      assert.deepEqual(ledger.stats, {
        queued: 0,
        written: 1000,
        failedBatches: 0,
        dropped: 0,
        replayed: 0,
        deferred: 0,
      });
      await ledger.close();
    });

    it('round-trips every column with the right types', async () => {
      const ledger = new UsageLedger(database, NO_TIMER);
      const expected = row({
        requestId: 'types_1',
        attempt: 2,
        clientRequestId: 'client-chosen-id',
        stream: true,
        status: 'client_closed',
        httpStatus: 499,
        errorCode: 'client_closed',
        promptTokens: 100_000,
        completionTokens: 7,
        cachedTokens: 50,
        reasoningTokens: 3,
        usageSource: 'estimated',
        latencyMs: 1234.567,
        ttftMs: 89.25,
        cacheStatus: 'bypass',
        costMicros: 9_007_199_254, // needs 64 bits
        createdAt: 4_102_444_800_123,
      });
      ledger.record(expected);
      await ledger.close();
      const stored = await database.db
        .selectFrom('usage_ledger')
        .selectAll()
        .where('request_id', '=', 'types_1')
        .executeTakeFirstOrThrow();
      assert.deepEqual(stored, {
        request_id: 'types_1',
        attempt: 2,
        client_request_id: 'client-chosen-id',
        key_id: 'key_1',
        route: '/v1/chat/completions',
        model_requested: 'fast',
        provider: 'mock',
        model_used: 'mock-small',
        status: 'client_closed',
        http_status: 499,
        error_code: 'client_closed',
        stream: 1,
        prompt_tokens: 100_000,
        completion_tokens: 7,
        cached_tokens: 50,
        reasoning_tokens: 3,
        usage_source: 'estimated',
        latency_ms: 1234.567,
        ttft_ms: 89.25,
        cache_status: 'bypass',
        cost_micros: 9_007_199_254,
        created_at: 4_102_444_800_123,
      });
    });

    it('keeps one row when the same (request_id, attempt) is recorded and flushed twice', async () => {
      const ledger = new UsageLedger(database, NO_TIMER);
      const once = row({ requestId: 'dup_1', attempt: 1 });
      ledger.record(once);
      await ledger.flush();
      ledger.record(once);
      ledger.record(once);
      await ledger.flush();
      ledger.record(row({ requestId: 'dup_1', attempt: 2 }));
      await ledger.close();
      assert.equal(await countRows(database, 'dup_1'), 2, 'attempts 1 and 2, once each');
    });

    it('close() writes everything queued; record() afterwards is a warned no-op', async () => {
      const logger = recordingLogger();
      const ledger = new UsageLedger(database, { ...NO_TIMER, maxBatch: 7, logger });
      for (let i = 0; i < 50; i++) ledger.record(row({ requestId: `close_${i}` }));
      await ledger.close();
      assert.equal(await countRows(database, 'close_'), 50);
      ledger.record(row({ requestId: 'close_after' }));
      assert.equal(ledger.stats.dropped, 1);
      assert.equal(ledger.stats.queued, 0);
      assert.ok(logger.lines.some((l) => l.level === 'warn' && /closed/.test(l.msg)));
      assert.equal(await countRows(database, 'close_after'), 0);
    });

    it('concurrent flushes write each row once', async () => {
      const ledger = new UsageLedger(database, { ...NO_TIMER, maxBatch: 10 });
      for (let i = 0; i < 95; i++) ledger.record(row({ requestId: `conc_${i}` }));
      const first = ledger.flush();
      for (let i = 95; i < 130; i++) ledger.record(row({ requestId: `conc_${i}` }));
      await Promise.all([first, ledger.flush(), ledger.flush()]);
      assert.equal(await countRows(database, 'conc_'), 130);
      assert.deepEqual(ledger.stats, {
        queued: 0,
        written: 130,
        failedBatches: 0,
        dropped: 0,
        replayed: 0,
        deferred: 0,
      });
      await ledger.close();
    });

    it('keeps the row when a text field contains NUL', async () => {
      const ledger = new UsageLedger(database, NO_TIMER);
      ledger.record(row({ requestId: 'nul_\u0000_1', modelRequested: 'fa\u0000st', errorCode: '\u0000' }));
      await ledger.close();
      const stored = await database.db
        .selectFrom('usage_ledger')
        .select(['request_id', 'model_requested', 'error_code'])
        .where('request_id', 'like', 'nul_%')
        .execute();
      assert.deepEqual(stored, [{ request_id: 'nul__1', model_requested: 'fast', error_code: '' }]);
    });

    it('drops and reports rows beyond maxQueued', async () => {
      const logger = recordingLogger();
      const ledger = new UsageLedger(database, { ...NO_TIMER, maxQueued: 10, logger });
      for (let i = 0; i < 15; i++) ledger.record(row({ requestId: `full_${i}` }));
      assert.equal(ledger.stats.queued, 10);
      assert.equal(ledger.stats.dropped, 5);
      assert.ok(logger.lines.some((l) => l.level === 'error'));
      await ledger.close();
      assert.equal(await countRows(database, 'full_'), 10);
    });
  });
}

describe('usage ledger while PostgreSQL is down', () => {
  it('keeps a failed batch queued and writes it after recovery', async () => {
    const server = await startPostgres();
    const dataDir = mkdtempSync(join(tmpdir(), 'switchyard-ledger-outage-'));
    const database = await openDatabase({ url: await createPostgresDatabase(server.url), dataDir });
    try {
      await migrate(database);
      const logger = recordingLogger();
      const ledger = new UsageLedger(database, { ...NO_TIMER, logger });
      ledger.record(row({ requestId: 'outage_0' }));
      await ledger.flush();

      await server.halt();
      for (let i = 1; i <= 20; i++) ledger.record(row({ requestId: `outage_${i}` }));
      await assert.rejects(ledger.flush());
      assert.equal(ledger.stats.queued, 20);
      assert.equal(ledger.stats.failedBatches, 1);
      assert.equal(ledger.stats.dropped, 0);

      await server.resume();
      await ledger.close();
      assert.deepEqual(ledger.stats, {
        queued: 0,
        written: 21,
        failedBatches: 1,
        dropped: 0,
        replayed: 0,
        deferred: 0,
      });
      assert.equal(await countRows(database, 'outage_'), 21);
      assert.ok(logger.lines.some((l) => /recovered/.test(l.msg)));
    } finally {
      await database.close();
      await server.stop();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

describe('usage ledger on a SQLite file', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'switchyard-ledger-sqlite-file-'));
  let database: Database;

  before(async () => {
    database = await openDatabase({ dataDir });
    await migrate(database);
  });
  after(async () => {
    await database.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('fails a batch while another connection holds the write lock, keeps its rows and writes them after', async () => {
    const ledger = new UsageLedger(database, { ...NO_TIMER, logger: recordingLogger() });
    const holder = openSqliteConnection(join(dataDir, 'switchyard.db'));
    try {
      holder.exec('begin immediate');
      for (let i = 0; i < 10; i++) ledger.record(row({ requestId: `locked_${i}` }));
      // A wait for the lock would block this thread (and the holder could be this thread's
      // own other connection): the write must give up at once and keep the rows.
      await assert.rejects(ledger.flush(), /locked|busy/i);
      assert.equal(ledger.stats.queued, 10);
      assert.equal(ledger.stats.failedBatches, 1);
      holder.exec('commit');
      await ledger.close();
      assert.equal(ledger.stats.written, 10);
      assert.equal(await countRows(database, 'locked_'), 10);
    } finally {
      if (holder.isTransaction) holder.exec('rollback');
      holder.close();
    }
  });

  it('writes a large batch in slices, letting the event loop run between them', async () => {
    const ledger = new UsageLedger(database, NO_TIMER);
    for (let i = 0; i < 500; i++) ledger.record(row({ requestId: `sliced_${i}` }));
    let turns = 0;
    let spinning = true;
    const spin = (): void => {
      turns++;
      if (spinning) setImmediate(spin);
    };
    setImmediate(spin);
    await ledger.flush();
    spinning = false;
    // 500 rows in slices of 64 are 8 transactions with 7 yields between them;
    // written in one go, the flush would finish without the loop turning.
    assert.ok(turns >= 7, `the event loop turned ${turns} times during the flush`);
    assert.equal(await countRows(database, 'sliced_'), 500);
    await ledger.close();
  });
});
