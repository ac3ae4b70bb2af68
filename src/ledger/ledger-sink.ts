/**
 * Where ledger batches go. PostgreSQL writes are network I/O and already off
 * the event loop, so they go through Kysely. SQLite (`node:sqlite`) is
 * synchronous: a 500-row insert on the main thread would stall every request
 * in flight, so SQLite batches are written by a dedicated worker thread with
 * its own connection to the same file (WAL mode; busy_timeout covers the rare
 * overlap with the main thread's own writes).
 */
import { Worker } from 'node:worker_threads';
import type { Insertable } from 'kysely';
import type { UsageLedgerTable } from '../store/schema.ts';
import type { Database } from '../store/sql.ts';

export type LedgerDbRow = Insertable<UsageLedgerTable>;

/**
 * A queued row is the JSON text of a LedgerDbRow, the same line the spool
 * holds: one string per row is all the queue keeps (a row object is some 25
 * heap objects that, waiting for the next batch, live long enough to be
 * promoted and only die in a full GC), and the SQLite thread is sent the
 * batch as one text.
 */
export type LedgerLine = string;

export interface LedgerSink {
  /** Writes the rows idempotently (a row already present is left as it is). */
  insert(rows: LedgerLine[]): Promise<void>;
  close(): Promise<void>;
}

/** Column order shared by the worker's statement and the rows sent to it. */
export const LEDGER_COLUMNS = [
  'request_id',
  'attempt',
  'client_request_id',
  'key_id',
  'route',
  'model_requested',
  'provider',
  'model_used',
  'status',
  'http_status',
  'error_code',
  'stream',
  'prompt_tokens',
  'completion_tokens',
  'cached_tokens',
  'reasoning_tokens',
  'usage_source',
  'latency_ms',
  'ttft_ms',
  'cache_status',
  'cost_micros',
  'created_at',
] as const satisfies ReadonlyArray<keyof UsageLedgerTable>;

/** A row read back from the spool: every column present, each a string, a number or null. */
export function isLedgerDbRow(value: unknown): value is LedgerDbRow {
  if (typeof value !== 'object' || value === null) return false;
  const row = value as Record<string, unknown>;
  if (typeof row['request_id'] !== 'string' || !Number.isInteger(row['attempt'])) return false;
  for (const column of LEDGER_COLUMNS) {
    const v = row[column];
    // Absent: a column added after the line was spooled (by an older version).
    if (v === undefined) row[column] = null;
    else if (v !== null && typeof v !== 'string' && typeof v !== 'number') return false;
  }
  return true;
}

// Bound parameters per statement: SQLite's SQLITE_MAX_VARIABLE_NUMBER is 32766,
// PostgreSQL's wire protocol allows 65535.
const MAX_PARAMS = { sqlite: 32_766, postgres: 65_535 } as const;

export function createLedgerSink(database: Database): LedgerSink {
  if (database.dialect === 'sqlite' && database.sqlitePath && database.sqlitePath !== ':memory:') {
    return new SqliteWorkerSink(database.sqlitePath);
  }
  return new KyselySink(database);
}

class KyselySink implements LedgerSink {
  readonly #database: Database;
  readonly #rowsPerStatement: number;

  constructor(database: Database) {
    this.#database = database;
    this.#rowsPerStatement = Math.floor(MAX_PARAMS[database.dialect] / LEDGER_COLUMNS.length);
  }

  async insert(lines: LedgerLine[]): Promise<void> {
    const rows = lines.map((line) => JSON.parse(line) as LedgerDbRow);
    await this.#database.db.transaction().execute(async (trx) => {
      for (let i = 0; i < rows.length; i += this.#rowsPerStatement) {
        await trx
          .insertInto('usage_ledger')
          .values(rows.slice(i, i + this.#rowsPerStatement))
          .onConflict((oc) => oc.columns(['request_id', 'attempt']).doNothing())
          .execute();
      }
    });
  }

  async close(): Promise<void> {}
}

interface WorkerReply {
  id: number;
  error?: string;
}

/** `.ts` when running from source, `.js` from the build (dist/): the worker is its sibling either way. */
const MODULE_EXTENSION = import.meta.url.endsWith('.ts') ? '.ts' : '.js';

class SqliteWorkerSink implements LedgerSink {
  readonly #worker: Worker;
  readonly #waiting = new Map<number, { resolve: () => void; reject: (error: Error) => void }>();
  #nextId = 1;
  #failure: Error | undefined;

  constructor(path: string) {
    this.#worker = new Worker(new URL(`./sqlite-ledger-worker${MODULE_EXTENSION}`, import.meta.url), {
      workerData: { path },
    });
    // Only in-flight writes keep the process alive, never an idle writer.
    this.#worker.unref();
    this.#worker.on('message', (reply: WorkerReply) => {
      const waiter = this.#waiting.get(reply.id);
      this.#waiting.delete(reply.id);
      if (this.#waiting.size === 0) this.#worker.unref();
      if (reply.error === undefined) waiter?.resolve();
      else waiter?.reject(new Error(reply.error));
    });
    this.#worker.on('error', (error) => this.#fail(error));
    this.#worker.on('exit', (code) => this.#fail(new Error(`ledger writer thread exited (${code})`)));
  }

  insert(lines: LedgerLine[]): Promise<void> {
    if (this.#failure) return Promise.reject(this.#failure);
    const id = this.#nextId++;
    // One JSON text: a string crosses to the thread as one copy, where
    // structured cloning 500 rows cost ~6 µs a row here.
    const rows = `[${lines.join(',')}]`;
    return new Promise<void>((resolve, reject) => {
      this.#waiting.set(id, { resolve, reject });
      this.#worker.ref();
      this.#worker.postMessage({ id, rows });
    });
  }

  async close(): Promise<void> {
    this.#worker.removeAllListeners('exit');
    await this.#worker.terminate();
  }

  #fail(error: Error): void {
    this.#failure ??= error;
    for (const waiter of this.#waiting.values()) waiter.reject(error);
    this.#waiting.clear();
  }
}
