/**
 * The SQLite ledger writer thread: receives batches of rows (the JSON text of
 * an array of LedgerDbRow objects) and inserts each batch in one transaction, so the
 * synchronous SQLite work never runs on the gateway's event loop.
 */
import type { SQLInputValue, StatementSync } from 'node:sqlite';
import { parentPort, workerData } from 'node:worker_threads';
import { openSqliteConnection } from '../store/sqlite-driver.ts';
import { LEDGER_COLUMNS } from './ledger-sink.ts';

const ROWS_PER_STATEMENT = 50;
const db = openSqliteConnection((workerData as { path: string }).path);

// Placeholders only: the statement text never contains data.
function insertStatement(rows: number): StatementSync {
  const tuple = `(${LEDGER_COLUMNS.map(() => '?').join(', ')})`;
  return db.prepare(
    `insert into usage_ledger (${LEDGER_COLUMNS.join(', ')}) values ${Array.from({ length: rows }, () => tuple).join(', ')} on conflict (request_id, attempt) do nothing`,
  );
}
const many = insertStatement(ROWS_PER_STATEMENT);
const one = insertStatement(1);
const begin = db.prepare('begin immediate');
const commit = db.prepare('commit');
const rollback = db.prepare('rollback');

parentPort!.on('message', ({ id, rows: text }: { id: number; rows: string }) => {
  try {
    const rows = (JSON.parse(text) as Record<string, SQLInputValue>[]).map((row) =>
      LEDGER_COLUMNS.map((column) => row[column] ?? null),
    );
    begin.run();
    try {
      let i = 0;
      for (; i + ROWS_PER_STATEMENT <= rows.length; i += ROWS_PER_STATEMENT) {
        many.run(...rows.slice(i, i + ROWS_PER_STATEMENT).flat());
      }
      for (; i < rows.length; i++) one.run(...rows[i]!);
      commit.run();
    } catch (error) {
      rollback.run();
      throw error;
    }
    parentPort!.postMessage({ id });
  } catch (error) {
    parentPort!.postMessage({ id, error: error instanceof Error ? error.message : String(error) });
  }
});
