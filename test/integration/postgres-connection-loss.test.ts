/**
 * A PostgreSQL connection the server drops (a restart, a failover,
 * `pg_terminate_backend`) is logged and replaced; it never takes the process
 * down. `pg` emits 'error' on a client whose connection dies, and the pool
 * listens only while the client is idle in it: a client checked out at that
 * moment (a query running, a migration's connection held) had no listener,
 * and the unhandled 'error' event was an uncaught exception. Seen as a
 * file-level failure of test/integration/health-deep.test.ts under load, when
 * its PostgreSQL stopped during a health ping.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { sql } from 'kysely';
import pg from 'pg';
import { type Database, openDatabase } from '../../src/store/sql.ts';
import { pollUntil } from '../fixtures/ops/proc.ts';
import { createPostgresDatabase, testPostgresUrl } from '../helpers/services.ts';

interface Warning {
  fields: Record<string, unknown>;
  message: string;
}

describe('PostgreSQL connections dropped by the server', () => {
  let dataDir: string;
  let url: string;
  let admin: pg.Client;
  let database: Database;
  const warnings: Warning[] = [];
  const uncaught: unknown[] = [];
  const onUncaught = (error: unknown) => uncaught.push(error);

  before(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'switchyard-pg-loss-'));
    url = await createPostgresDatabase(testPostgresUrl());
    admin = new pg.Client({ connectionString: testPostgresUrl() });
    await admin.connect();
    database = await openDatabase({
      url,
      dataDir,
      logger: { warn: (fields, message) => warnings.push({ fields: { ...fields }, message }) },
    });
    process.on('uncaughtException', onUncaught);
  });

  after(async () => {
    process.off('uncaughtException', onUncaught);
    await database?.close();
    await admin?.end();
    rmSync(dataDir, { recursive: true, force: true });
  });

  async function terminate(pid: number): Promise<void> {
    const { rows } = await admin.query<{ done: boolean }>('select pg_terminate_backend($1) as done', [pid]);
    assert.equal(rows[0]?.done, true);
  }

  test('a checked-out connection dropped between queries: a warning, the next query fails, nothing uncaught', async () => {
    const before = warnings.length;
    await database.db.connection().execute(async (conn) => {
      const { rows } = await sql<{ pid: number }>`select pg_backend_pid() as pid`.execute(conn);
      await terminate(rows[0]!.pid);
      await pollUntil('the dropped connection told', async () => warnings.length > before);
      await assert.rejects(sql`select 1`.execute(conn));
    });
    const warning = warnings[before]!;
    assert.equal(warning.message, 'database connection failed');
    assert.equal(warning.fields['code'], '57P01', JSON.stringify(warning.fields));
    assert.equal(warnings.length, before + 1, 'told once');
    assert.deepEqual(uncaught, []);
    // The pool threw the dead connection away: the next query gets a new one.
    await sql`select 1`.execute(database.db);
  });

  test('a connection dropped while its query runs: the query fails, nothing uncaught', async () => {
    const before = warnings.length;
    const { rows } = await sql<{ pid: number }>`select pg_backend_pid() as pid`.execute(database.db);
    const pid = rows[0]!.pid;
    // The same pooled connection (the only idle one) runs a long query; it is dropped mid-way.
    const running = database.db.connection().execute(async (conn) => {
      const mine = await sql<{ pid: number }>`select pg_backend_pid() as pid`.execute(conn);
      assert.equal(mine.rows[0]!.pid, pid);
      return sql`select pg_sleep(30)`.execute(conn);
    });
    // Its outcome is taken now: it may fail before it is awaited (an unhandled rejection otherwise).
    const outcome = running.then(
      () => undefined,
      (error: unknown) => error,
    );
    await pollUntil('the long query sleeping', async () => {
      const sleeping = await admin.query(
        `select 1 from pg_stat_activity where pid = $1 and wait_event = 'PgSleep'`,
        [pid],
      );
      return sleeping.rowCount === 1;
    });
    await terminate(pid);
    const error = (await outcome) as { code?: string } | undefined;
    assert.equal(error?.code, '57P01', String(error));
    await pollUntil('the dropped connection told', async () => warnings.length > before);
    assert.deepEqual(uncaught, []);
    await sql`select 1`.execute(database.db);
  });

  test('an idle pooled connection dropped: a warning once, and the pool carries on', async () => {
    const { rows } = await sql<{ pid: number }>`select pg_backend_pid() as pid`.execute(database.db);
    const before = warnings.length;
    await terminate(rows[0]!.pid);
    await pollUntil('the dropped connection told', async () => warnings.length > before);
    assert.equal(warnings[before]!.fields['code'], '57P01');
    assert.equal(warnings.length, before + 1, 'told once, not by both the client and the pool');
    assert.deepEqual(uncaught, []);
    await sql`select 1`.execute(database.db);
  });
});
