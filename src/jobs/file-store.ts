/**
 * Files of the Files API in the SQL store: batch input a key uploaded, and the
 * output and error files its batches wrote. A file's bytes are kept as chunks
 * of whole lines (about 1 MB each, `file_chunks`), so an upload is written as
 * it arrives and a download or a batch reads it chunk by chunk: a 200 MB file
 * is never held whole in memory, and every gateway and worker process that
 * shares the database sees it.
 *
 * A file is visible only once all of it is written (`status = processed`); an
 * upload cut short (bad UTF-8, too large, the client gone) leaves no row.
 */
import { randomBytes } from 'node:crypto';
import { TextDecoder } from 'node:util';
import type { Selectable } from 'kysely';
import type { FilesTable } from '../store/schema.ts';
import type { Database } from '../store/sql.ts';

/** Chunks are cut at the last line end past this many characters. */
const CHUNK_CHARS = 1 << 20;
/** A single line longer than this is refused (a JSONL line holds one request). */
export const MAX_LINE_CHARS = 16 << 20;

export interface FileRecord {
  id: string;
  keyId: string;
  purpose: string;
  filename: string;
  bytes: number;
  lines: number;
  createdAt: number;
  expiresAt: number | null;
}

/** Why an upload was refused; the message is safe to show the client. */
export class FileRejectedError extends Error {
  override readonly name = 'FileRejectedError';
  readonly code: 'file_too_large' | 'invalid_file';
  constructor(message: string, code: 'file_too_large' | 'invalid_file') {
    super(message);
    this.code = code;
  }
}

export interface WriteFileInput {
  keyId: string;
  purpose: string;
  filename: string;
  expiresAt: number | null;
  /** Refuse beyond this many bytes. */
  maxBytes: number;
  /**
   * false: written but not visible until `publish` (an upload whose other form
   * fields are still to be checked). @default true
   */
  publish?: boolean;
}

export function newFileId(): string {
  return `file-${randomBytes(12).toString('hex')}`;
}

export class FileStore {
  readonly #database: Database;

  constructor(database: Database) {
    this.#database = database;
  }

  /**
   * Writes a file from raw bytes (an upload) as it arrives. Refuses bytes that
   * are not UTF-8, NUL characters (no JSONL line holds one; PostgreSQL text
   * cannot), lines over MAX_LINE_CHARS, and files over `maxBytes`; what was
   * written of a refused file is removed.
   */
  async writeBytes(input: WriteFileInput, source: AsyncIterable<Buffer>): Promise<FileRecord> {
    const decoder = new TextDecoder('utf-8', { fatal: true });
    let bytes = 0;
    async function* text(): AsyncGenerator<string> {
      for await (const piece of source) {
        bytes += piece.length;
        if (bytes > input.maxBytes) {
          throw new FileRejectedError(`The file is larger than ${input.maxBytes} bytes`, 'file_too_large');
        }
        yield decodePiece(decoder, piece);
      }
      yield decodePiece(decoder, undefined);
    }
    return this.#write(input, text(), () => bytes);
  }

  /** Writes a file the gateway produces, one line at a time (each without its line end). */
  async writeLines(
    input: Omit<WriteFileInput, 'maxBytes'>,
    lines: AsyncIterable<string>,
  ): Promise<FileRecord> {
    let bytes = 0;
    async function* text(): AsyncGenerator<string> {
      for await (const line of lines) {
        const withEnd = `${line}\n`;
        bytes += Buffer.byteLength(withEnd);
        yield withEnd;
      }
    }
    return this.#write({ ...input, maxBytes: Number.POSITIVE_INFINITY }, text(), () => bytes);
  }

  /** Makes a file written with `publish: false` visible. */
  async publish(id: string): Promise<void> {
    await this.#database.db.updateTable('files').set({ status: 'processed' }).where('id', '=', id).execute();
  }

  async get(keyId: string, id: string): Promise<FileRecord | undefined> {
    const row = await this.#database.db
      .selectFrom('files')
      .selectAll()
      .where('id', '=', id)
      .where('key_id', '=', keyId)
      .where('status', '=', 'processed')
      .executeTakeFirst();
    return row === undefined ? undefined : fromRow(row);
  }

  /** A key's files, newest first, after the file `after` (a cursor) when given. */
  async list(
    keyId: string,
    options: { purpose?: string | undefined; after?: string | undefined; limit: number },
  ): Promise<FileRecord[]> {
    let query = this.#database.db
      .selectFrom('files')
      .selectAll()
      .where('key_id', '=', keyId)
      .where('status', '=', 'processed');
    if (options.purpose !== undefined) query = query.where('purpose', '=', options.purpose);
    if (options.after !== undefined) {
      const cursor = await this.get(keyId, options.after);
      if (cursor === undefined) return [];
      query = query.where((eb) =>
        eb.or([
          eb('created_at', '<', cursor.createdAt),
          eb.and([eb('created_at', '=', cursor.createdAt), eb('id', '<', cursor.id)]),
        ]),
      );
    }
    const rows = await query
      .orderBy('created_at', 'desc')
      .orderBy('id', 'desc')
      .limit(options.limit)
      .execute();
    return rows.map(fromRow);
  }

  /** Removes a key's file (published or not) and its bytes; false when the key has no such file. */
  async delete(keyId: string, id: string): Promise<boolean> {
    return this.#database.db.transaction().execute(async (tx) => {
      const gone = await tx
        .deleteFrom('files')
        .where('id', '=', id)
        .where('key_id', '=', keyId)
        .executeTakeFirst();
      if (gone.numDeletedRows === 0n) return false;
      await tx.deleteFrom('file_chunks').where('file_id', '=', id).execute();
      return true;
    });
  }

  /** The file's text, chunk by chunk (each chunk whole lines, the last one maybe without its line end). */
  async *chunks(id: string): AsyncGenerator<string> {
    // One chunk per query: a reader holds one chunk at a time, and no cursor stays open across awaits.
    for (let seq = 0; ; seq++) {
      const row = await this.#database.db
        .selectFrom('file_chunks')
        .select('data')
        .where('file_id', '=', id)
        .where('seq', '=', seq)
        .executeTakeFirst();
      if (row === undefined) return;
      yield row.data;
    }
  }

  /** The file's lines in order, numbered from 1, blank lines skipped (their numbers still count). */
  async *lines(id: string): AsyncGenerator<{ line: number; text: string }> {
    let line = 0;
    for await (const chunk of this.chunks(id)) {
      let start = 0;
      while (start < chunk.length) {
        let end = chunk.indexOf('\n', start);
        if (end === -1) end = chunk.length;
        line++;
        const text = chunk.slice(start, end > start && chunk.charCodeAt(end - 1) === 13 ? end - 1 : end);
        if (text.trim() !== '') yield { line, text };
        start = end + 1;
      }
    }
  }

  /** Removes files whose retention has lapsed (and their bytes). */
  async deleteExpired(now: number): Promise<number> {
    const expired = await this.#database.db
      .selectFrom('files')
      .select('id')
      .where('expires_at', '<=', now)
      .limit(1_000)
      .execute();
    for (const { id } of expired) await this.#remove(id);
    return expired.length;
  }

  /** A file's row and its bytes, together. */
  async #remove(id: string): Promise<void> {
    await this.#database.db.transaction().execute(async (tx) => {
      await tx.deleteFrom('file_chunks').where('file_id', '=', id).execute();
      await tx.deleteFrom('files').where('id', '=', id).execute();
    });
  }

  async #write(
    input: WriteFileInput,
    text: AsyncIterable<string>,
    bytesSoFar: () => number,
  ): Promise<FileRecord> {
    const id = newFileId();
    const createdAt = Date.now();
    const db = this.#database.db;
    await db
      .insertInto('files')
      .values({
        id,
        key_id: input.keyId,
        purpose: input.purpose,
        filename: input.filename,
        bytes: 0,
        lines: 0,
        status: 'uploading',
        created_at: createdAt,
        expires_at: input.expiresAt,
      })
      .execute();
    let seq = 0;
    let lines = 0;
    let pending = '';
    const flush = async (upTo: number) => {
      const data = pending.slice(0, upTo);
      pending = pending.slice(upTo);
      lines += countLines(data);
      await db.insertInto('file_chunks').values({ file_id: id, seq, data }).execute();
      seq++;
    };
    try {
      for await (const piece of text) {
        if (piece.includes('\u0000'))
          throw new FileRejectedError('The file contains NUL characters', 'invalid_file');
        pending += piece;
        while (pending.length >= CHUNK_CHARS) {
          const end = pending.lastIndexOf('\n');
          if (end === -1) {
            if (pending.length > MAX_LINE_CHARS) {
              throw new FileRejectedError(
                `A line is longer than ${MAX_LINE_CHARS} characters`,
                'invalid_file',
              );
            }
            break;
          }
          await flush(end + 1);
        }
      }
      if (pending.length > 0) await flush(pending.length);
      if (lines === 0) throw new FileRejectedError('The file is empty', 'invalid_file');
      await db
        .updateTable('files')
        .set({ status: input.publish === false ? 'uploading' : 'processed', bytes: bytesSoFar(), lines })
        .where('id', '=', id)
        .execute();
    } catch (error) {
      await this.#remove(id).catch(() => undefined);
      throw error;
    }
    return {
      id,
      keyId: input.keyId,
      purpose: input.purpose,
      filename: input.filename,
      bytes: bytesSoFar(),
      lines,
      createdAt,
      expiresAt: input.expiresAt,
    };
  }
}

function decodePiece(decoder: TextDecoder, piece: Buffer | undefined): string {
  try {
    return piece === undefined ? decoder.decode() : decoder.decode(piece, { stream: true });
  } catch {
    throw new FileRejectedError('The file is not valid UTF-8 text', 'invalid_file');
  }
}

/** Lines in a piece of text: its line ends, plus one for a last line without an end. */
function countLines(text: string): number {
  let count = 0;
  for (let at = text.indexOf('\n'); at !== -1; at = text.indexOf('\n', at + 1)) count++;
  return text.length > 0 && !text.endsWith('\n') ? count + 1 : count;
}

function fromRow(row: Selectable<FilesTable>): FileRecord {
  return {
    id: row.id,
    keyId: row.key_id,
    purpose: row.purpose,
    filename: row.filename,
    bytes: Number(row.bytes),
    lines: row.lines,
    createdAt: Number(row.created_at),
    expiresAt: row.expires_at === null ? null : Number(row.expires_at),
  };
}
