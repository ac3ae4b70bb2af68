/**
 * Adapter from Node's built-in `node:sqlite` (`DatabaseSync`) to the small
 * database interface Kysely's `SqliteDialect` expects, so SQLite needs no
 * native addon.
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { DatabaseSync, type SQLInputValue, type StatementSync } from 'node:sqlite';
import type { SqliteDatabase, SqliteStatement } from 'kysely';

export interface OpenSqliteOptions {
  /**
   * How long a writer waits for another process's lock before failing with SQLITE_BUSY.
   * @default 5000
   */
  busyTimeoutMs?: number;
}

export function openSqlite(path: string, options: OpenSqliteOptions = {}): SqliteDatabase {
  return new NodeSqliteDatabase(openSqliteConnection(path, options));
}

/** A raw connection with our settings (also the ledger writer's own connection). */
export function openSqliteConnection(path: string, options: OpenSqliteOptions = {}): DatabaseSync {
  if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
  const db = new DatabaseSync(path, {
    enableForeignKeyConstraints: true,
    timeout: options.busyTimeoutMs ?? 5000,
  });
  // WAL lets readers proceed while one writer commits; NORMAL only risks the last
  // commits on an OS crash or power loss, never on an application crash.
  setWalMode(db, options.busyTimeoutMs ?? 5000);
  db.exec('PRAGMA synchronous = NORMAL');
  return db;
}

/**
 * Switching a database to WAL needs a moment with no other connection writing,
 * and SQLite answers SQLITE_BUSY at once rather than waiting out its busy
 * timeout (several processes opening one fresh file together, one of them
 * migrating, meet this). So it is retried, backing off, within the same bound.
 */
function setWalMode(db: DatabaseSync, timeoutMs: number): void {
  const deadline = Date.now() + timeoutMs;
  for (let attempt = 1; ; attempt++) {
    try {
      db.exec('PRAGMA journal_mode = WAL');
      return;
    } catch (error) {
      if (!isBusy(error) || Date.now() >= deadline) throw error;
      // Synchronous like the rest of the open: the connection is not usable until this is done.
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, Math.min(5 * attempt, 50));
    }
  }
}

function isBusy(error: unknown): boolean {
  const code = (error as { errcode?: unknown } | null)?.errcode;
  return code === 5 || (error instanceof Error && /database is locked/.test(error.message));
}

class NodeSqliteDatabase implements SqliteDatabase {
  readonly #db: DatabaseSync;

  constructor(db: DatabaseSync) {
    this.#db = db;
  }

  close(): void {
    if (this.#db.isOpen) this.#db.close();
  }

  prepare(sqlText: string): SqliteStatement {
    // Kysely opens transactions with a plain (deferred) BEGIN. A deferred
    // transaction that reads before it writes can fail at once with SQLITE_BUSY
    // when another process committed in between, without honouring busy_timeout.
    // IMMEDIATE takes the write lock up front, so a second process waits instead.
    const text = sqlText.trim().toLowerCase() === 'begin' ? 'begin immediate' : sqlText;
    return new NodeSqliteStatement(this.#db.prepare(text));
  }
}

class NodeSqliteStatement implements SqliteStatement {
  readonly #stmt: StatementSync;
  readonly reader: boolean;

  constructor(stmt: StatementSync) {
    this.#stmt = stmt;
    this.reader = stmt.columns().length > 0;
  }

  // node:sqlite returns null-prototype rows; pg returns plain objects. Copying
  // makes rows from both dialects alike (deepEqual, `in`, spreading, logging).
  all(parameters: ReadonlyArray<unknown>): unknown[] {
    return this.#stmt.all(...toSqliteValues(parameters)).map((row) => ({ ...row }));
  }

  run(parameters: ReadonlyArray<unknown>): { changes: number | bigint; lastInsertRowid: number | bigint } {
    return this.#stmt.run(...toSqliteValues(parameters));
  }

  *iterate(parameters: ReadonlyArray<unknown>): IterableIterator<unknown> {
    for (const row of this.#stmt.iterate(...toSqliteValues(parameters))) yield { ...row };
  }
}

function toSqliteValues(parameters: ReadonlyArray<unknown>): SQLInputValue[] {
  return parameters.map(toSqliteValue);
}

// node:sqlite binds only null, numbers, bigints, strings and byte arrays; the
// rest is mapped the way the PostgreSQL path stores it so both dialects agree.
function toSqliteValue(value: unknown): SQLInputValue {
  if (value === null || value === undefined) return null;
  switch (typeof value) {
    case 'string':
    case 'number':
    case 'bigint':
      return value;
    case 'boolean':
      return value ? 1 : 0;
    default:
      if (value instanceof Date) return value.getTime();
      // Blobs: node:sqlite refuses views over shared memory, which Kysely never passes.
      if (value instanceof Uint8Array) return value as Uint8Array<ArrayBuffer>;
      throw new TypeError(`cannot bind a value of type ${typeof value} to a SQLite parameter`);
  }
}
