/**
 * OpenAI batches in the SQL store: the batch row (status, counts, files, the
 * times of each step) and one row per processed input line (`batch_lines`),
 * keyed by line number, so a batch taken over after a worker died resumes
 * where the dead worker's results end and no line lands twice.
 */
import { randomBytes } from 'node:crypto';
import type { Selectable, Updateable } from 'kysely';
import type { BatchesTable } from '../store/schema.ts';
import type { Database } from '../store/sql.ts';

export type BatchStatus =
  | 'validating'
  | 'failed'
  | 'in_progress'
  | 'finalizing'
  | 'completed'
  | 'expired'
  | 'cancelling'
  | 'cancelled';

export type BatchRecord = Selectable<BatchesTable> & { status: BatchStatus };

/** Statuses a batch never leaves. */
export const FINAL_BATCH_STATUSES: ReadonlySet<string> = new Set([
  'failed',
  'completed',
  'expired',
  'cancelled',
]);

export function newBatchId(): string {
  return `batch_${randomBytes(12).toString('hex')}`;
}

export interface NewBatch {
  keyId: string;
  endpoint: string;
  inputFileId: string;
  completionWindow: string;
  metadata: Record<string, string> | null;
  expiresAt: number;
}

export class BatchStore {
  readonly #database: Database;

  constructor(database: Database) {
    this.#database = database;
  }

  async create(input: NewBatch): Promise<BatchRecord> {
    const row: BatchRecord = {
      id: newBatchId(),
      key_id: input.keyId,
      endpoint: input.endpoint,
      input_file_id: input.inputFileId,
      completion_window: input.completionWindow,
      status: 'validating',
      output_file_id: null,
      error_file_id: null,
      errors: null,
      metadata: input.metadata === null ? null : JSON.stringify(input.metadata),
      total: 0,
      completed: 0,
      failed: 0,
      created_at: Date.now(),
      in_progress_at: null,
      finalizing_at: null,
      completed_at: null,
      failed_at: null,
      expires_at: input.expiresAt,
      expired_at: null,
      cancelling_at: null,
      cancelled_at: null,
    };
    await this.#database.db.insertInto('batches').values(row).execute();
    return row;
  }

  /** A batch by id; with `keyId`, only that key's. */
  async get(id: string, keyId?: string): Promise<BatchRecord | undefined> {
    let query = this.#database.db.selectFrom('batches').selectAll().where('id', '=', id);
    if (keyId !== undefined) query = query.where('key_id', '=', keyId);
    const row = await query.executeTakeFirst();
    return row === undefined ? undefined : normalize(row);
  }

  /** A key's batches, newest first, after the batch `after` (a cursor) when given. */
  async list(keyId: string, options: { after?: string | undefined; limit: number }): Promise<BatchRecord[]> {
    let query = this.#database.db.selectFrom('batches').selectAll().where('key_id', '=', keyId);
    if (options.after !== undefined) {
      const cursor = await this.get(options.after, keyId);
      if (cursor === undefined) return [];
      query = query.where((eb) =>
        eb.or([
          eb('created_at', '<', cursor.created_at),
          eb.and([eb('created_at', '=', cursor.created_at), eb('id', '<', cursor.id)]),
        ]),
      );
    }
    const rows = await query
      .orderBy('created_at', 'desc')
      .orderBy('id', 'desc')
      .limit(options.limit)
      .execute();
    return rows.map(normalize);
  }

  /**
   * Applies `changes` when the batch is in one of `from` (a compare-and-set, so
   * a cancel and a worker's step cannot overwrite each other); the batch
   * afterwards, or undefined when it was not in `from`.
   */
  async transition(
    id: string,
    from: readonly BatchStatus[],
    changes: Updateable<BatchesTable>,
  ): Promise<BatchRecord | undefined> {
    const result = await this.#database.db
      .updateTable('batches')
      .set(changes)
      .where('id', '=', id)
      .where('status', 'in', from)
      .executeTakeFirst();
    if (result.numUpdatedRows === 0n) return undefined;
    return this.get(id);
  }

  /** Records a line's result once: a second write of the same line is ignored. */
  async recordLine(batchId: string, line: number, ok: boolean, output: string): Promise<void> {
    await this.#database.db
      .insertInto('batch_lines')
      .values({ batch_id: batchId, line, ok: ok ? 1 : 0, output })
      .onConflict((oc) => oc.columns(['batch_id', 'line']).doNothing())
      .execute();
  }

  /** Line numbers already processed. */
  async doneLines(batchId: string): Promise<Set<number>> {
    const rows = await this.#database.db
      .selectFrom('batch_lines')
      .select('line')
      .where('batch_id', '=', batchId)
      .execute();
    return new Set(rows.map((r) => r.line));
  }

  /** Lines processed, as OpenAI counts them: completed (answered 2xx) and failed. */
  async lineCounts(batchId: string): Promise<{ completed: number; failed: number }> {
    const rows = await this.#database.db
      .selectFrom('batch_lines')
      .select(['ok', (eb) => eb.fn.countAll<number>().as('n')])
      .where('batch_id', '=', batchId)
      .groupBy('ok')
      .execute();
    let completed = 0;
    let failed = 0;
    for (const row of rows) {
      if (Number(row.ok) === 1) completed = Number(row.n);
      else failed = Number(row.n);
    }
    return { completed, failed };
  }

  /** The output lines of one kind (ok or not), in input order, a page at a time. */
  async *outputs(batchId: string, ok: boolean): AsyncGenerator<string> {
    let after = 0;
    for (;;) {
      const rows = await this.#database.db
        .selectFrom('batch_lines')
        .select(['line', 'output'])
        .where('batch_id', '=', batchId)
        .where('ok', '=', ok ? 1 : 0)
        .where('line', '>', after)
        .orderBy('line')
        .limit(500)
        .execute();
      for (const row of rows) yield row.output;
      if (rows.length < 500) return;
      after = rows.at(-1)!.line;
    }
  }

  /** Removes finished batches created before `beforeMs` (the retention sweep; their files expire on their own). */
  async deleteFinishedBefore(beforeMs: number): Promise<number> {
    const old = await this.#database.db
      .selectFrom('batches')
      .select('id')
      .where('status', 'in', [...FINAL_BATCH_STATUSES])
      .where('created_at', '<', beforeMs)
      .limit(1_000)
      .execute();
    for (const { id } of old) {
      await this.#database.db.transaction().execute(async (tx) => {
        await tx.deleteFrom('batch_lines').where('batch_id', '=', id).execute();
        await tx.deleteFrom('batches').where('id', '=', id).execute();
      });
    }
    return old.length;
  }

  /** Drops a finished batch's per-line results (its output files hold them). */
  async dropLines(batchId: string): Promise<void> {
    await this.#database.db.deleteFrom('batch_lines').where('batch_id', '=', batchId).execute();
  }
}

function normalize(row: Selectable<BatchesTable>): BatchRecord {
  const num = (v: number | null) => (v === null ? null : Number(v));
  return {
    ...row,
    status: row.status as BatchStatus,
    created_at: Number(row.created_at),
    in_progress_at: num(row.in_progress_at),
    finalizing_at: num(row.finalizing_at),
    completed_at: num(row.completed_at),
    failed_at: num(row.failed_at),
    expires_at: Number(row.expires_at),
    expired_at: num(row.expired_at),
    cancelling_at: num(row.cancelling_at),
    cancelled_at: num(row.cancelled_at),
  };
}
