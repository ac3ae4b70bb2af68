/**
 * Where ledger batches go. PostgreSQL writes are network I/O and already off
 * the event loop, so they go through Kysely. A SQLite file gets a writer of its
 * own (`sqlite-ledger-sink.ts`) that slices batches so the synchronous inserts
 * never stall requests in flight for long.
 */
import type { Insertable } from 'kysely';
import type { UsageLedgerTable } from '../store/schema.ts';
import type { Database } from '../store/sql.ts';

export type LedgerDbRow = Insertable<UsageLedgerTable>;

/**
 * A queued row is the JSON text of a LedgerDbRow, the same line the spool
 * holds: one string per row is all the queue keeps (a row object is some 25
 * heap objects that, waiting for the next batch, live long enough to be
 * promoted and only die in a full GC).
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

/** Writes through Kysely: PostgreSQL, and SQLite in memory (no file for a second connection). */
export class KyselyLedgerSink implements LedgerSink {
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
