/**
 * Stored Responses API responses in SQL (table `responses`, SQLite or
 * PostgreSQL): what `GET /v1/responses/{id}` answers, and what
 * `previous_response_id` continues. Every read and write is scoped to the key
 * that created the response: another key's id is as absent as an unknown one.
 *
 * A conversation is a chain of rows, each naming the one it continued; its
 * history is read in one recursive query, oldest first. Continuing a chain
 * renews the retention of every row in it, so a conversation in use never
 * loses its beginning; rows past their `expires_at` are invisible at once and
 * removed lazily, in small batches, at most once a minute, by the writes.
 *
 * Items are kept as JSON in the Responses API's own shapes (provider-neutral):
 * this layer does not read them.
 */
import { sql } from 'kysely';
import type { Database } from './sql.ts';

export interface StoredResponse {
  id: string;
  keyId: string;
  previousResponseId: string | null;
  model: string;
  inputItems: unknown[];
  outputItems: unknown[];
  /** The Response object as the client got it. */
  response: Record<string, unknown>;
  createdAt: number;
  expiresAt: number;
}

/** One turn of a conversation: what was sent and what came back. */
export interface ChainTurn {
  id: string;
  inputItems: unknown[];
  outputItems: unknown[];
}

export type ChainLookup =
  | { found: true; turns: ChainTurn[] }
  /** `missing` is the id that is gone: the one asked for, or an earlier turn of its chain (deleted). */
  | { found: false; missing: string };

/** A chain longer than this is refused (a loop cannot happen, but a bound costs nothing). */
const MAX_CHAIN = 10_000;
const SWEEP_EVERY_MS = 60_000;
const SWEEP_BATCH = 500;
const SWEEP_MAX_BATCHES = 20;

export interface ResponsesRepoOptions {
  retentionMs: number;
  now?: () => number;
  /** Told about a failed background sweep (it is retried on a later write). */
  onSweepError?: (error: unknown) => void;
}

export class ResponsesRepo {
  readonly #database: Database;
  readonly #retentionMs: number;
  readonly #now: () => number;
  readonly #onSweepError: (error: unknown) => void;
  #lastSweep = 0;
  #sweeping: Promise<void> | undefined;

  constructor(database: Database, options: ResponsesRepoOptions) {
    this.#database = database;
    this.#retentionMs = options.retentionMs;
    this.#now = options.now ?? Date.now;
    this.#onSweepError = options.onSweepError ?? (() => {});
  }

  /** When a response stored now expires. */
  expiryFromNow(): number {
    return this.#now() + this.#retentionMs;
  }

  /**
   * Stores a response; the chain it continues (`chainIds`, as `chain` read
   * them) lives on as long as it does.
   */
  async save(row: StoredResponse, chainIds: readonly string[] = []): Promise<void> {
    await this.#database.db.transaction().execute(async (tx) => {
      await tx
        .insertInto('responses')
        .values({
          id: row.id,
          key_id: row.keyId,
          previous_response_id: row.previousResponseId,
          model: row.model,
          input_items: JSON.stringify(row.inputItems),
          output_items: JSON.stringify(row.outputItems),
          response: JSON.stringify(row.response),
          created_at: row.createdAt,
          expires_at: row.expiresAt,
        })
        .execute();
      for (let i = 0; i < chainIds.length; i += SWEEP_BATCH) {
        await tx
          .updateTable('responses')
          .set({ expires_at: row.expiresAt })
          .where('key_id', '=', row.keyId)
          .where('id', 'in', chainIds.slice(i, i + SWEEP_BATCH))
          .where('expires_at', '<', row.expiresAt)
          .execute();
      }
    });
    this.#maybeSweep();
  }

  async get(keyId: string, id: string): Promise<StoredResponse | undefined> {
    const row = await this.#database.db
      .selectFrom('responses')
      .selectAll()
      .where('id', '=', id)
      .where('key_id', '=', keyId)
      .where('expires_at', '>', this.#now())
      .executeTakeFirst();
    if (row === undefined) return undefined;
    return {
      id: row.id,
      keyId: row.key_id,
      previousResponseId: row.previous_response_id,
      model: row.model,
      inputItems: JSON.parse(row.input_items) as unknown[],
      outputItems: JSON.parse(row.output_items) as unknown[],
      response: JSON.parse(row.response) as Record<string, unknown>,
      createdAt: Number(row.created_at),
      expiresAt: Number(row.expires_at),
    };
  }

  /** The conversation that ends with `id`, oldest turn first, in one query. */
  async chain(keyId: string, id: string): Promise<ChainLookup> {
    const now = this.#now();
    const { rows } = await sql<{
      id: string;
      previous_response_id: string | null;
      input_items: string;
      output_items: string;
      expires_at: number | string;
    }>`
      with recursive chain (id, previous_response_id, input_items, output_items, expires_at, depth) as (
        select id, previous_response_id, input_items, output_items, expires_at, 0
        from responses where id = ${id} and key_id = ${keyId}
        union all
        select r.id, r.previous_response_id, r.input_items, r.output_items, r.expires_at, c.depth + 1
        from responses r join chain c on r.id = c.previous_response_id
        where r.key_id = ${keyId} and c.depth < ${MAX_CHAIN}
      )
      select id, previous_response_id, input_items, output_items, expires_at from chain order by depth desc
    `.execute(this.#database.db);
    const head = rows.at(-1);
    if (head === undefined || Number(head.expires_at) <= now) return { found: false, missing: id };
    const oldest = rows[0]!;
    // The chain must reach its first turn: an earlier response that was deleted breaks it.
    if (oldest.previous_response_id !== null) return { found: false, missing: oldest.previous_response_id };
    const expired = rows.find((row) => Number(row.expires_at) <= now);
    if (expired !== undefined) return { found: false, missing: expired.id };
    return {
      found: true,
      turns: rows.map((row) => ({
        id: row.id,
        inputItems: JSON.parse(row.input_items) as unknown[],
        outputItems: JSON.parse(row.output_items) as unknown[],
      })),
    };
  }

  /** Deletes one of the key's responses; false when it has none by that id. */
  async delete(keyId: string, id: string): Promise<boolean> {
    const result = await this.#database.db
      .deleteFrom('responses')
      .where('id', '=', id)
      .where('key_id', '=', keyId)
      .where('expires_at', '>', this.#now())
      .executeTakeFirst();
    return Number(result.numDeletedRows) > 0;
  }

  /** Removes expired rows in short batches (never one long lock); resolves with how many. */
  async sweep(): Promise<number> {
    const now = this.#now();
    let removed = 0;
    for (let batch = 0; batch < SWEEP_MAX_BATCHES; batch++) {
      const result = await this.#database.db
        .deleteFrom('responses')
        .where(
          'id',
          'in',
          this.#database.db
            .selectFrom('responses')
            .select('id')
            .where('expires_at', '<=', now)
            .limit(SWEEP_BATCH),
        )
        .executeTakeFirst();
      const count = Number(result.numDeletedRows);
      removed += count;
      if (count < SWEEP_BATCH) break;
    }
    return removed;
  }

  /** Waits for a sweep in progress (a gateway stopping). */
  async idle(): Promise<void> {
    await this.#sweeping;
  }

  #maybeSweep(): void {
    const now = this.#now();
    if (this.#sweeping !== undefined || now - this.#lastSweep < SWEEP_EVERY_MS) return;
    this.#lastSweep = now;
    this.#sweeping = this.sweep()
      .then(
        () => undefined,
        (error: unknown) => this.#onSweepError(error),
      )
      .finally(() => {
        this.#sweeping = undefined;
      });
  }
}
