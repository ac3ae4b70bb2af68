/**
 * The ledger's durability and its manners while the database is down:
 * - rows recorded in one event-loop turn are spooled to disk together at its
 *   end, and `whenDurable` calls back only once they are there; a ledger that dies before
 *   writing them leaves them to the next one, which writes them once (a torn
 *   last line is skipped, a line replayed twice is written once) and then
 *   removes the spool;
 * - while writes fail, attempts back off (a frozen clock sees exactly one
 *   attempt however many rows arrive) and every row stays queued.
 */
import assert from 'node:assert/strict';
import { appendFileSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { toDbRow as dbRowOf } from '../../src/ledger/ledger-row.ts';
import { UsageLedger } from '../../src/ledger/usage-ledger.ts';
import { migrate } from '../../src/store/migrations.ts';
import { type Database, openDatabase } from '../../src/store/sql.ts';
import { pollUntil } from '../fixtures/ops/proc.ts';
import { tempDir } from '../helpers/gateway.ts';
import { sampleLedgerRow } from '../helpers/ledger-rows.ts';
import { createPostgresDatabase, testPostgresUrl } from '../helpers/services.ts';

const NO_TIMER = { flushIntervalMs: 3_600_000 };

/** A fresh row whose request id starts with `prefix`. */
const row = (prefix: string) => sampleLedgerRow({ attempt: 1 }, prefix);

async function requestIds(database: Database, prefix: string): Promise<string[]> {
  const rows = await database.db
    .selectFrom('usage_ledger')
    .select('request_id')
    .where('request_id', 'like', `${prefix}%`)
    .execute();
  return rows.map((r) => r.request_id).sort();
}

const spoolFiles = (dir: string) => readdirSync(dir).filter((name) => name.endsWith('.jsonl'));

describe('ledger spool', () => {
  test('rows a dead ledger spooled are written once by the next, and the spool is emptied', async () => {
    const dataDir = tempDir('switchyard-spool-');
    const spoolDir = join(dataDir, 'ledger-spool');
    const database = await openDatabase({ dataDir });
    await migrate(database);
    const dead = new UsageLedger(database, { ...NO_TIMER, spoolDir });
    const recorded: string[] = [];
    for (let i = 0; i < 5; i++) {
      const r = row('spool');
      recorded.push(r.requestId);
      dead.record(r);
    }
    await dead.flush();
    for (let i = 0; i < 20; i++) {
      const r = row('spool');
      recorded.push(r.requestId);
      dead.record(r);
    }
    // Lines of one turn are written together at its end; an answer waits for that.
    await new Promise<void>((resolve) => dead.whenDurable(resolve));
    // The first five are written, so their lines are gone; the other twenty wait on disk.
    const [file] = spoolFiles(spoolDir);
    assert.ok(file);
    const lines = readFileSync(join(spoolDir, file), 'utf8').trim().split('\n');
    assert.equal(lines.length, 20);
    // Lines are column values in order, not row objects.
    assert.ok(Array.isArray(JSON.parse(lines[0]!)));
    // A line replayed twice; a row object as earlier versions spooled it (a column added
    // since is absent); a line that is neither; and a write the kill cut short.
    const legacy = { ...JSON.parse(JSON.stringify(dbRowOf(row('spool')))), client_request_id: undefined };
    recorded.push(legacy.request_id);
    appendFileSync(
      join(spoolDir, file),
      `${lines[0]}\n${JSON.stringify(legacy)}\n"not a row"\n{"request_id":"spool_torn","att`,
    );

    // `dead` never flushes again (its timer is an hour away): it has died, as far as the spool knows.
    const next = new UsageLedger(database, { ...NO_TIMER, spoolDir });
    assert.equal(next.stats.replayed, 22);
    await next.flush();
    assert.deepEqual(await requestIds(database, 'spool'), recorded.sort());
    assert.deepEqual(spoolFiles(spoolDir), [], 'written segments are removed');
    await next.close();
    await dead.close();
    assert.deepEqual(await requestIds(database, 'spool'), recorded, 'closing the dead one doubles nothing');
    assert.deepEqual(spoolFiles(spoolDir), []);
    await database.close();
  });
});

describe('ledger spool group commit', () => {
  test('the rows of one turn reach the file together: when an answer waits on a quiet spool, else at the turn’s end', async () => {
    const dataDir = tempDir('switchyard-spool-turn-');
    const spoolDir = join(dataDir, 'ledger-spool');
    const database = await openDatabase({ dataDir });
    await migrate(database);
    const ledger = new UsageLedger(database, { ...NO_TIMER, spoolDir });
    const linesOnDisk = () =>
      spoolFiles(spoolDir).reduce(
        (n, f) => n + readFileSync(join(spoolDir, f), 'utf8').split('\n').filter(Boolean).length,
        0,
      );
    const order: string[] = [];
    for (let i = 0; i < 50; i++) ledger.record(row('turn'));
    order.push(`recorded, ${linesOnDisk()} lines on disk`);
    // Nothing was written lately (no load): the answer's wait writes the turn's rows now.
    ledger.whenDurable(() => order.push(`durable with ${linesOnDisk()} lines`));
    assert.deepEqual(order, ['recorded, 0 lines on disk', 'durable with 50 lines']);
    // Rows no answer waits for go out at the end of the turn.
    for (let i = 0; i < 5; i++) ledger.record(row('turn'));
    assert.equal(linesOnDisk(), 50);
    await new Promise<void>((resolve) => setImmediate(resolve));
    assert.equal(linesOnDisk(), 55);
    // Nothing is waiting now: the callback comes at once.
    let atOnce = false;
    ledger.whenDurable(() => {
      atOnce = true;
    });
    assert.equal(atOnce, true);
    await ledger.close();
    assert.equal((await requestIds(database, 'turn')).length, 55);
    assert.deepEqual(spoolFiles(spoolDir), []);
    await database.close();
  });
});

describe('ledger spool past the memory bound', () => {
  test('rows beyond maxQueued stay on disk only and the next start writes them all', async () => {
    const dataDir = tempDir('switchyard-spool-full-');
    const spoolDir = join(dataDir, 'ledger-spool');
    const database = await openDatabase({ dataDir });
    await migrate(database);
    const full = new UsageLedger(database, { ...NO_TIMER, spoolDir, maxQueued: 10 });
    const recorded: string[] = [];
    for (let i = 0; i < 15; i++) {
      const r = row('overflow');
      recorded.push(r.requestId);
      full.record(r);
    }
    assert.equal(full.stats.queued, 10);
    assert.equal(full.stats.deferred, 5);
    assert.equal(full.stats.dropped, 0);
    // Its own queue written: the file stays, it still holds the five rows only on disk.
    await full.flush();
    assert.equal(spoolFiles(spoolDir).length, 1);

    const next = new UsageLedger(database, { ...NO_TIMER, spoolDir });
    assert.equal(next.stats.replayed, 15);
    await next.flush();
    assert.deepEqual(await requestIds(database, 'overflow'), recorded.sort());
    assert.deepEqual(spoolFiles(spoolDir), []);
    await next.close();
    await full.close();
    assert.deepEqual(spoolFiles(spoolDir), []);
    await database.close();
  });
});

describe('ledger backoff while the database refuses writes', () => {
  test('a frozen clock sees one attempt however many rows arrive; time lets the next one through', async () => {
    const dataDir = tempDir('switchyard-backoff-');
    // A real PostgreSQL database, not migrated: every insert fails (no such
    // table) the way writes to a database that is down do, until the test
    // migrates it.
    const database = await openDatabase({ url: await createPostgresDatabase(testPostgresUrl()), dataDir });
    let now = 1_000_000;
    const ledger = new UsageLedger(database, {
      flushIntervalMs: 5,
      maxBatch: 50,
      maxBackoffMs: 30_000,
      clock: () => now,
    });
    for (let i = 0; i < 60; i++) ledger.record(row('backoff'));
    await pollUntil('the first write attempt fails', async () => ledger.stats.failedBatches >= 1, {
      attempts: 400,
      intervalMs: 5,
    });
    // Many more rows, each past the batch size, over many timer ticks: no new attempt while the clock stands.
    for (let round = 0; round < 40; round++) {
      for (let i = 0; i < 60; i++) ledger.record(row('backoff'));
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    assert.equal(ledger.stats.failedBatches, 1, 'attempts while backing off');
    assert.equal(ledger.stats.queued, 60 * 41, 'every row is kept');

    now += 30_000; // past any backoff
    await pollUntil('the next attempt after the backoff', async () => ledger.stats.failedBatches >= 2, {
      attempts: 400,
      intervalMs: 5,
    });
    for (let round = 0; round < 10; round++) await new Promise((resolve) => setTimeout(resolve, 5));
    assert.equal(ledger.stats.failedBatches, 2, 'one attempt per backoff window');

    // The database comes back: everything is written.
    await migrate(database);
    now += 60_000;
    await pollUntil('the queue drains', async () => ledger.stats.queued === 0, {
      attempts: 400,
      intervalMs: 10,
    });
    assert.equal((await requestIds(database, 'backoff')).length, 60 * 41);
    assert.equal(ledger.stats.dropped, 0);
    await ledger.close();
    await database.close();
  });
});
