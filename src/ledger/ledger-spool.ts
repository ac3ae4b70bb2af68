/**
 * The ledger's append-only local spool: what makes an answered request's
 * usage survive the process dying (kill -9, OOM, a crash), though not the
 * machine (no fsync; the OS page cache outlives the process).
 *
 * Every row is appended as one JSON line when its attempt ends, and is on
 * disk before its answer is sent: rows appended in one turn of the event loop
 * are written together, with one synchronous write, at the end of that turn
 * (group commit: under load one write serves every answer of the turn;
 * ending the write per row cut ~28 µs of CPU per request at c=50 here, where
 * the write alone measures ~4.6 µs), and answers wait for it
 * (`whenDurable`). When nothing was written for a while (no load, so no group
 * to wait for), an answer that waits writes the turn's rows at once instead:
 * it leaves without the hop to the turn's end. The in-memory queue then
 * writes rows to the database as before. A segment file is deleted
 * (or, for the one being appended to, truncated) once every row in it is in
 * the database. On start, segments left by a process that is gone are
 * claimed (renamed, so two starting instances never both take one) and their
 * rows queued again; the ledger's `ON CONFLICT (request_id, attempt) DO
 * NOTHING` makes that replay idempotent, rows already written are skipped.
 *
 * Files: `<dir>/<pid>-<token>-<seq>.jsonl`, where the random token tells this
 * process's files from those of an earlier process with the same pid (a
 * restarted container is pid 1 every time).
 */
import { randomBytes } from 'node:crypto';
import {
  closeSync,
  ftruncateSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';

/**
 * An answer that waits for its rows writes them at once when the spool wrote
 * nothing for this long (ms): below ~1,000 answers a second there is no group
 * to commit, and waiting for the turn's end only delays the answer (measured
 * with bench/paired-ab.sh at 200 requests a second: 0.00–0.13 ms of a cooled
 * request's latency, a few hundredths in most rounds). Above it, writes come
 * every turn and answers keep sharing them.
 */
export const QUIET_WRITE_MS = 1;

/** A new segment is started past this size, so a finished one can be deleted whole. */
const SEGMENT_BYTES = 4 * 1024 * 1024;
const FILE_NAME = /^(\d+)-([0-9a-f]+)-(\d+)\.jsonl$/;

export interface SpoolLogger {
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

/** One spool file and how many of its rows the database has. */
export class SpoolSegment {
  readonly path: string;
  fd: number | undefined;
  rows = 0;
  committed = 0;
  bytes = 0;
  /** Holds rows that are only on disk (the memory queue was full): kept for the next start to replay. */
  pinned = false;

  constructor(path: string, fd: number | undefined) {
    this.path = path;
    this.fd = fd;
  }
}

/** Rows another process spooled and never saw written, claimed by this one. */
export interface SpoolLeftover<Row> {
  segment: SpoolSegment;
  rows: Row[];
}

export class LedgerSpool {
  readonly #dir: string;
  readonly #prefix: string;
  readonly #logger: SpoolLogger;
  #seq = 0;
  #current: SpoolSegment | undefined;
  /** After a failed write (disk full) rows are no longer spooled; logged once. */
  #broken = false;
  /** Lines appended to the current segment in this turn, written at its end. */
  #lines: string[] = [];
  /** Called once the lines appended before them are written. */
  #waiters: (() => void)[] = [];
  #flushScheduled = false;
  /** When the last write went out (`#now()`), to tell a quiet spool from a busy one. */
  #lastWriteAt = Number.NEGATIVE_INFINITY;
  readonly #now: () => number;
  readonly #flushSoon = (): void => {
    this.#flushScheduled = false;
    this.flush();
  };

  /** `now` (ms, monotonic) is only replaced by tests. */
  constructor(dir: string, logger: SpoolLogger, now: () => number = performance.now.bind(performance)) {
    this.#dir = dir;
    this.#logger = logger;
    this.#now = now;
    this.#prefix = `${process.pid}-${randomBytes(6).toString('hex')}`;
    mkdirSync(dir, { recursive: true });
  }

  get dir(): string {
    return this.#dir;
  }

  /**
   * Appends one row (its JSON text, one line, written at the end of the turn);
   * returns the segment that now holds it, or undefined when
   * the spool cannot be written (the row is still queued in memory).
   */
  append(json: string, options: { diskOnly?: boolean } = {}): SpoolSegment | undefined {
    if (this.#broken) return undefined;
    try {
      let segment = this.#current;
      if (segment === undefined || segment.bytes >= SEGMENT_BYTES) segment = this.#rotate();
      this.#lines.push(json);
      // Characters, not bytes: only decides when to start a new segment.
      segment.bytes += json.length + 1;
      if (options.diskOnly) segment.pinned = true;
      else segment.rows++;
      if (!this.#flushScheduled) {
        this.#flushScheduled = true;
        setImmediate(this.#flushSoon);
      }
      return segment;
    } catch (error) {
      this.#fail(error);
      return undefined;
    }
  }

  /**
   * Calls `done` once every row appended so far is on disk: at once when none
   * is waiting or the spool is quiet (they are written now, see QUIET_WRITE_MS),
   * else at the end of the turn, with the turn's other rows.
   */
  whenDurable(done: () => void): void {
    if (this.#lines.length > 0) {
      if (this.#now() - this.#lastWriteAt < QUIET_WRITE_MS) {
        this.#waiters.push(done);
        return;
      }
      // Earlier waiters are called by it too; the turn's scheduled flush then finds nothing to write.
      this.flush();
    }
    done();
  }

  /**
   * Writes the lines appended since the last flush, in one write; appended
   * (O_APPEND), so a truncation in between cannot leave a hole. Runs at the
   * end of the turn, and before anything that needs the file complete
   * (a database batch, a new segment, close). A failed write leaves the rows
   * queued in memory only, as a row that could not be spooled always was.
   */
  flush(): void {
    const lines = this.#lines;
    if (lines.length > 0) {
      this.#lines = [];
      const fd = this.#current?.fd;
      try {
        if (fd !== undefined && !this.#broken) writeAll(fd, `${lines.join('\n')}\n`);
        this.#lastWriteAt = this.#now();
      } catch (error) {
        this.#fail(error);
      }
    }
    const waiters = this.#waiters;
    if (waiters.length === 0) return;
    this.#waiters = [];
    for (const done of waiters) done();
  }

  #fail(error: unknown): void {
    if (this.#broken) return;
    this.#broken = true;
    this.#logger.error(
      { err: error instanceof Error ? error.message : String(error), dir: this.#dir },
      'ledger spool write failed; usage is queued in memory only from now on',
    );
  }

  /** `count` rows of `segment` are in the database; a fully written segment goes away. */
  committed(segment: SpoolSegment, count: number): void {
    segment.committed += count;
    if (segment.committed < segment.rows || segment.pinned) return;
    try {
      if (segment === this.#current && segment.fd !== undefined) {
        // Keep the file open and start it over: cheaper than a new file per quiet moment.
        ftruncateSync(segment.fd, 0);
        segment.rows = 0;
        segment.committed = 0;
        segment.bytes = 0;
        return;
      }
      if (segment.fd !== undefined) closeSync(segment.fd);
      segment.fd = undefined;
      unlinkSync(segment.path);
    } catch (error) {
      this.#logger.warn(
        { err: error instanceof Error ? error.message : String(error), path: segment.path },
        'could not remove a written ledger spool segment; its rows will be replayed (idempotently)',
      );
    }
  }

  /**
   * Claims the segments of processes that are gone and reads their rows.
   * Lines that do not parse (a write cut short by the kill) or that `decode`
   * refuses are skipped.
   */
  claimLeftovers<Row>(decode: (value: unknown) => Row | undefined): SpoolLeftover<Row>[] {
    const leftovers: SpoolLeftover<Row>[] = [];
    for (const name of readdirSync(this.#dir)) {
      const match = FILE_NAME.exec(name);
      if (!match || name.startsWith(`${this.#prefix}-`)) continue;
      const pid = Number(match[1]);
      if (pid !== process.pid && isAlive(pid)) continue;
      const claimed = join(this.#dir, `${this.#prefix}-${this.#seq++}.jsonl`);
      try {
        renameSync(join(this.#dir, name), claimed);
      } catch {
        continue; // another starting instance claimed it first
      }
      const rows: Row[] = [];
      let skipped = 0;
      for (const line of readFileSync(claimed, 'utf8').split('\n')) {
        if (line.length === 0) continue;
        try {
          const row = decode(JSON.parse(line));
          if (row !== undefined) rows.push(row);
          else skipped++;
        } catch {
          skipped++;
        }
      }
      if (skipped > 0) this.#logger.warn({ path: claimed, skipped }, 'ledger spool lines skipped on replay');
      const segment = new SpoolSegment(claimed, undefined);
      segment.rows = rows.length;
      leftovers.push({ segment, rows });
      if (rows.length === 0) this.committed(segment, 0);
    }
    return leftovers;
  }

  /** Closes the current segment; removes it when everything in it was written. */
  close(): void {
    this.flush();
    const segment = this.#current;
    this.#current = undefined;
    if (segment?.fd === undefined) return;
    closeSync(segment.fd);
    segment.fd = undefined;
    if (segment.committed >= segment.rows && !segment.pinned) {
      try {
        unlinkSync(segment.path);
      } catch {
        // already gone
      }
    }
  }

  #rotate(): SpoolSegment {
    this.flush();
    const previous = this.#current;
    const path = join(this.#dir, `${this.#prefix}-${this.#seq++}.jsonl`);
    const segment = new SpoolSegment(path, openSync(path, 'a'));
    this.#current = segment;
    if (previous?.fd !== undefined) {
      closeSync(previous.fd);
      previous.fd = undefined;
      // Everything in it may already be written (then nothing will commit it again).
      if (previous.committed >= previous.rows) this.committed(previous, 0);
    }
    return segment;
  }
}

/** A write to a regular file is whole unless the disk fills; a short one is continued all the same. */
function writeAll(fd: number, text: string): void {
  const bytes = Buffer.from(text);
  let offset = 0;
  while (offset < bytes.length) offset += writeSync(fd, bytes, offset, bytes.length - offset);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it exists, under another user.
    return (error as { code?: string }).code === 'EPERM';
  }
}
