/**
 * The usage ledger: one row per upstream attempt, the source of truth for
 * money. Requests only append to an in-memory queue; a background flusher
 * writes batches (one multi-row INSERT per chunk, in a transaction) so the
 * database never sits on a request's path.
 *
 * Idempotent writes: `ON CONFLICT (request_id, attempt) DO NOTHING`, so a batch
 * re-sent after an ambiguous failure (e.g. commit succeeded, reply lost) never
 * doubles a row.
 *
 * Durability: with a spool directory, each row is also appended to a local
 * file by the end of the event-loop turn it was recorded in, and answers wait
 * for that (`whenDurable`, ledger-spool.ts), so usage already answered
 * survives the process being killed and is written on the next start.
 *
 * While the database is down, batches are retried with jittered exponential
 * backoff (from `flushIntervalMs` up to 30 s), not once per new row; every
 * row stays queued (and spooled) meanwhile.
 */
import type { CacheStatus, LedgerStatus, UsageSource } from '../store/schema.ts';
import type { Database } from '../store/sql.ts';
import { toDbRow } from './ledger-row.ts';
import {
  decodeSpooledRow,
  encodeLedgerLine,
  KyselyLedgerSink,
  type LedgerLine,
  type LedgerSink,
} from './ledger-sink.ts';
import { LedgerSpool, type SpoolSegment } from './ledger-spool.ts';
import { SqliteLedgerSink } from './sqlite-ledger-sink.ts';

/** How long close() keeps retrying its last flush while the database is busy. */
const CLOSE_FLUSH_PATIENCE_MS = 5_000;

export interface LedgerRow {
  requestId: string;
  attempt: number;
  /** The client's x-request-id, when it sent one. */
  clientRequestId: string | null;
  keyId: string | null;
  route: string;
  modelRequested: string;
  provider: string | null;
  modelUsed: string | null;
  status: LedgerStatus;
  httpStatus: number;
  errorCode: string | null;
  stream: boolean;
  promptTokens: number;
  completionTokens: number;
  cachedTokens: number;
  reasoningTokens: number;
  usageSource: UsageSource;
  latencyMs: number;
  ttftMs: number | null;
  cacheStatus: CacheStatus;
  /** Micro-dollars; null while the price is unknown. */
  costMicros: number | null;
  createdAt: number;
}

export interface LedgerLogger {
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface UsageLedgerOptions {
  /**
   * How often queued rows are written.
   * @default 200
   */
  flushIntervalMs?: number;
  /**
   * Rows per transaction.
   * @default 500
   */
  maxBatch?: number;
  /**
   * Rows held in memory while the database is unavailable; see `record()`.
   * @default 100_000
   */
  maxQueued?: number;
  /**
   * Where rows are spooled to disk before `record()` returns, so a killed
   * process loses no usage; rows a dead process left there are written on
   * start. Without it, rows live only in memory until written.
   */
  spoolDir?: string;
  /**
   * The longest wait between write attempts while the database is down.
   * @default 30_000
   */
  maxBackoffMs?: number;
  /** Milliseconds now; for tests of the backoff. */
  clock?: () => number;
  logger?: LedgerLogger;
}

export interface UsageLedgerStats {
  /** Rows waiting to be written, including a batch being written now. */
  queued: number;
  /** Rows the database has accepted (a duplicate that was already there counts too). */
  written: number;
  failedBatches: number;
  /** Rows refused because the queue was full, or recorded after close(). */
  dropped: number;
  /** Rows a previous process left in the spool, queued again at start. */
  replayed: number;
  /** Rows past `maxQueued` kept only in the spool: the next start writes them. */
  deferred: number;
}

/** A queued row (its JSON text) and the spool segment holding it (none without a spool). */
interface Queued {
  line: LedgerLine;
  segment: SpoolSegment | undefined;
}

const noopLogger: LedgerLogger = { warn() {}, error() {} };

/**
 * A write starts once this many rows wait (or maxBatch, if smaller), not only
 * at the flush interval: under load a row then waits milliseconds, not up to
 * the 200 ms interval, so its line dies young instead of being promoted to
 * V8's old generation (a seventh of all bytes promoted at 9k requests/s).
 */
const WRITE_AT_ROWS = 64;

export class UsageLedger {
  readonly #sink: LedgerSink;
  readonly #maxBatch: number;
  readonly #writeAtRows: number;
  readonly #maxQueued: number;
  readonly #logger: LedgerLogger;
  readonly #timer: NodeJS.Timeout;
  readonly #spool: LedgerSpool | undefined;
  readonly #flushIntervalMs: number;
  readonly #maxBackoffMs: number;
  readonly #clock: () => number;

  // FIFO. A batch being written is moved to #inFlightRows and put back at the
  // front if the write fails, so order and exactly-once queueing are kept.
  #pending: Queued[] = [];
  #inFlightRows: Queued[] = [];
  /** No write attempt before this time (set after a failure). */
  #retryAt = 0;
  #inFlight: Promise<void> | null = null;
  #kickScheduled = false;
  #closed = false;

  // Rows ever accepted into the queue / ever written; flush() waits on these.
  #enqueued = 0;
  #dequeued = 0;
  #written = 0;
  #failedBatches = 0;
  #consecutiveFailures = 0;
  #dropped = 0;
  #replayed = 0;
  #deferred = 0;

  constructor(database: Database, options: UsageLedgerOptions = {}) {
    const flushIntervalMs = options.flushIntervalMs ?? 200;
    this.#flushIntervalMs = flushIntervalMs;
    this.#maxBackoffMs = options.maxBackoffMs ?? 30_000;
    this.#clock = options.clock ?? Date.now;
    this.#maxBatch = options.maxBatch ?? 500;
    this.#writeAtRows = Math.min(WRITE_AT_ROWS, this.#maxBatch);
    this.#maxQueued = options.maxQueued ?? 100_000;
    for (const [name, value] of [
      ['flushIntervalMs', flushIntervalMs],
      ['maxBatch', this.#maxBatch],
      ['maxQueued', this.#maxQueued],
    ] as const) {
      if (!Number.isInteger(value) || value < 1) {
        throw new RangeError(`UsageLedger: ${name} must be a positive integer, got ${value}`);
      }
    }
    this.#sink = createLedgerSink(database);
    this.#logger = options.logger ?? noopLogger;
    this.#spool =
      options.spoolDir === undefined ? undefined : new LedgerSpool(options.spoolDir, this.#logger);
    if (this.#spool) this.#replayLeftovers(this.#spool);
    this.#timer = setInterval(() => this.#tick(), flushIntervalMs);
    this.#timer.unref();
  }

  /**
   * Queues a row; synchronous, O(1), never throws.
   *
   * Trade-off: while the database is down rows wait in memory up to `maxQueued`;
   * past that, memory stops growing: with a spool new rows are kept on disk
   * only (`stats.deferred`, written by the next start), without one they are
   * dropped (`stats.dropped`), logged as errors either way. With a spool, a
   * row is on disk by the end of this event-loop turn (`whenDurable` says
   * when), so a crash after its answer loses nothing; without one, a crash
   * loses what is queued (a clean close() writes it).
   */
  record(row: LedgerRow): void {
    try {
      if (this.#closed) {
        this.#dropped++;
        this.#logger.warn({ requestId: row.requestId }, 'usage ledger is closed; row not recorded');
        return;
      }
      if (this.#pending.length + this.#inFlightRows.length >= this.#maxQueued) {
        this.#overflow(row);
        return;
      }
      const line = encodeLedgerLine(toDbRow(row));
      this.#pending.push({ line, segment: this.#spool?.append(line) });
      this.#enqueued++;
      if (this.#pending.length >= this.#writeAtRows) this.#kick();
    } catch (err) {
      this.#dropped++;
      this.#logger.error({ err: errorMessage(err) }, 'usage ledger could not queue a row');
    }
  }

  /**
   * The memory queue is full (the database has been down a long while): with
   * a spool the row is kept on disk only, for the next start to write;
   * without one it is dropped. Logged for the first and every 1000th row.
   */
  #overflow(row: LedgerRow): void {
    const kept = this.#spool?.append(encodeLedgerLine(toDbRow(row)), { diskOnly: true }) !== undefined;
    if (kept) this.#deferred++;
    else this.#dropped++;
    const count = kept ? this.#deferred : this.#dropped;
    if (count % 1000 === 1) {
      this.#logger.error(
        { deferred: this.#deferred, dropped: this.#dropped, maxQueued: this.#maxQueued },
        kept
          ? 'usage ledger queue full; rows kept in the spool only, written at the next start'
          : 'usage ledger queue full; dropping usage rows',
      );
    }
  }

  /**
   * Calls `done` once the rows recorded so far are on disk (spooled), at once
   * without a spool: an answer waits for it, so a client that saw its answer
   * has its usage survive a kill -9.
   */
  whenDurable(done: () => void): void {
    if (this.#spool === undefined) done();
    else this.#spool.whenDurable(done);
  }

  /** Writes every row queued before the call. Rejects if a batch fails; its rows stay queued. */
  async flush(): Promise<void> {
    const target = this.#enqueued;
    while (this.#dequeued < target) {
      if (this.#inFlight === null && this.#pending.length === 0) return;
      await this.#writeNext();
    }
  }

  /** Stops the timer and writes what is queued. After it, record() drops rows with a warning. */
  async close(): Promise<void> {
    if (this.#closed) return this.flush();
    this.#closed = true;
    clearInterval(this.#timer);
    try {
      await this.#flushBeforeClose();
    } catch (err) {
      this.#logger.error(
        { err: errorMessage(err), lost: this.#pending.length + this.#inFlightRows.length },
        'usage ledger closed with rows it could not write',
      );
      throw err;
    } finally {
      // Rows it could not write stay in the spool file for the next start.
      this.#spool?.close();
      await this.#sink.close();
    }
  }

  /**
   * The last flush, retried for a bounded time: another process on the same
   * SQLite file (an HTTP worker of `--workers N`, a `switchyard worker`) may
   * hold its write lock at that moment, and the writer never waits for a lock
   * (see sqlite-ledger-sink.ts). Nothing is waiting on the event loop any
   * more, so waiting here costs no one; past the bound the rows stay in the
   * spool for the next start.
   */
  async #flushBeforeClose(): Promise<void> {
    const deadline = Date.now() + CLOSE_FLUSH_PATIENCE_MS;
    for (let waitMs = 10; ; waitMs = Math.min(200, waitMs * 2)) {
      try {
        await this.flush();
        return;
      } catch (err) {
        if (Date.now() + waitMs > deadline) throw err;
        await new Promise((resolve) => setTimeout(resolve, waitMs));
      }
    }
  }

  get stats(): UsageLedgerStats {
    return {
      queued: this.#pending.length + this.#inFlightRows.length,
      written: this.#written,
      failedBatches: this.#failedBatches,
      dropped: this.#dropped,
      replayed: this.#replayed,
      deferred: this.#deferred,
    };
  }

  /** Queues, ahead of anything new, the rows processes before this one spooled and never saw written. */
  #replayLeftovers(spool: LedgerSpool): void {
    const leftovers = spool.claimLeftovers(decodeSpooledRow);
    const queued: Queued[] = [];
    for (const { segment, rows } of leftovers) {
      for (const row of rows) queued.push({ line: encodeLedgerLine(row), segment });
    }
    if (queued.length === 0) return;
    this.#pending = queued.concat(this.#pending);
    this.#enqueued += queued.length;
    this.#replayed += queued.length;
    this.#logger.warn(
      { rows: queued.length, files: leftovers.length, dir: spool.dir },
      'replaying usage rows left in the ledger spool by a stopped process',
    );
    this.#kick();
  }

  #kick(): void {
    if (this.#kickScheduled || this.#inFlight !== null || this.#clock() < this.#retryAt) return;
    this.#kickScheduled = true;
    setImmediate(() => {
      this.#kickScheduled = false;
      this.#tick();
    }).unref();
  }

  #tick(): void {
    if (this.#inFlight !== null || this.#pending.length === 0 || this.#clock() < this.#retryAt) return;
    // Drain until empty or a batch fails; a failed batch waits for the next tick.
    const drain = async (): Promise<void> => {
      while (this.#pending.length > 0 && this.#clock() >= this.#retryAt) await this.#writeNext();
    };
    drain().catch((err: unknown) => {
      // While the database is down this fails every tick; log the first and then every 25th.
      if (this.#consecutiveFailures % 25 === 1) {
        this.#logger.warn(
          { err: errorMessage(err), queued: this.stats.queued, failures: this.#consecutiveFailures },
          'usage ledger write failed; will retry',
        );
      }
    });
  }

  /** Joins the batch in flight, or starts the next one. Exactly one batch is in flight at a time. */
  #writeNext(): Promise<void> {
    if (this.#inFlight !== null) return this.#inFlight;
    if (this.#pending.length === 0) return Promise.resolve();
    // The spool holds every row before the database does (so a committed row's line is there to drop).
    this.#spool?.flush();
    const batch = this.#pending.splice(0, this.#maxBatch);
    this.#inFlightRows = batch;
    const run = async (): Promise<void> => {
      try {
        await this.#sink.insert(batch.map((q) => q.line));
        this.#dequeued += batch.length;
        this.#written += batch.length;
        this.#retryAt = 0;
        this.#releaseSpooled(batch);
        if (this.#consecutiveFailures > 0) {
          this.#logger.warn({ failures: this.#consecutiveFailures }, 'usage ledger writes recovered');
          this.#consecutiveFailures = 0;
        }
      } catch (err) {
        this.#failedBatches++;
        this.#consecutiveFailures++;
        this.#retryAt = this.#clock() + this.#backoffMs();
        this.#pending = batch.concat(this.#pending);
        throw err;
      } finally {
        this.#inFlightRows = [];
        this.#inFlight = null;
      }
    };
    this.#inFlight = run();
    return this.#inFlight;
  }

  /**
   * Full jitter over an exponential step: many gateways that lost one database
   * do not come back to it in step, and a down database sees a few attempts a
   * minute, not one per request.
   */
  #backoffMs(): number {
    const exponent = Math.min(this.#consecutiveFailures - 1, 20);
    const ceiling = Math.min(this.#maxBackoffMs, this.#flushIntervalMs * 2 ** exponent);
    return ceiling / 2 + Math.random() * (ceiling / 2);
  }

  /** Tells the spool which of its rows are now in the database, one call per run of one segment. */
  #releaseSpooled(batch: Queued[]): void {
    if (this.#spool === undefined) return;
    let segment: SpoolSegment | undefined;
    let count = 0;
    for (const queued of batch) {
      if (queued.segment !== segment) {
        if (segment !== undefined) this.#spool.committed(segment, count);
        segment = queued.segment;
        count = 0;
      }
      count++;
    }
    if (segment !== undefined) this.#spool.committed(segment, count);
  }
}

function createLedgerSink(database: Database): LedgerSink {
  if (database.dialect === 'sqlite' && database.sqlitePath && database.sqlitePath !== ':memory:') {
    return new SqliteLedgerSink(database.sqlitePath);
  }
  return new KyselyLedgerSink(database);
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
