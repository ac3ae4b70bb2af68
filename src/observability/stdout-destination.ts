/**
 * Where the gateway's log batches (line-batcher.ts) go: standard output,
 * through Node's own stream for it, written in the calling thread.
 *
 * Why not sonic-boom's asynchronous mode, used before: each batch crossed to
 * libuv's thread pool (a wake-up, a context switch, and on a gateway given
 * one core the pool thread's write competing with requests). Measured here,
 * interleaved, the harness's closed loop at c=50 pinned to one core: a cached
 * answer 41.3 → 39.0 µs of CPU a request (5 rounds; 45.7 → 40.9 in another
 * run), a relayed one unchanged within noise (90.4 and 90.5, 6 rounds), with
 * the same lines written. Nor its synchronous mode: on a pipe whose reader
 * stalls it retries in a sleeping loop, which would stop the event loop.
 *
 * `process.stdout` writes at once: to a file, a write(2) (a file never makes
 * the writer wait for a reader); to a pipe or socket, libuv writes what the
 * pipe takes now and queues the rest in memory until it drains, so a stalled
 * log reader (a wedged collector, a paused `docker logs`) never blocks a
 * request; a terminal is written synchronously (POSIX), as for any program.
 * The queue is bounded: past `maxQueuedBytes` waiting, whole batches are
 * dropped and counted, and once the reader catches up one line says how many
 * lines were lost. A write error (EPIPE: the reader is gone) drops too, and
 * never crashes the gateway.
 */
import type { Writable } from 'node:stream';
import type { LineDestination } from './line-batcher.ts';

/** Log bytes held for a stalled reader before batches are dropped. */
export const MAX_QUEUED_BYTES = 16 * 1024 * 1024;

/** How long a flush waits for a backed-up reader. */
export const FLUSH_WAIT_MS = 2_000;

export interface StdoutDestinationOptions {
  /** Defaults to `process.stdout`. */
  stream?: Writable;
  maxQueuedBytes?: number;
  flushWaitMs?: number;
}

/**
 * Streams that failed (EPIPE: the reader went away), watched with one error
 * listener each however many destinations write to them (a process may make
 * several loggers; a listener each would pile up on stdout).
 */
const watched = new WeakMap<Writable, { broken: boolean }>();

function watch(stream: Writable): { broken: boolean } {
  let state = watched.get(stream);
  if (state === undefined) {
    const failed = { broken: false };
    // Without a listener, the error would be thrown.
    stream.on('error', () => {
      failed.broken = true;
    });
    watched.set(stream, failed);
    state = failed;
  }
  return state;
}

export class StdoutDestination implements LineDestination {
  readonly #stream: Writable;
  readonly #state: { broken: boolean };
  readonly #maxQueuedBytes: number;
  readonly #flushWaitMs: number;
  /** Lines dropped since the last report of them. */
  #dropped = 0;

  constructor(options: StdoutDestinationOptions = {}) {
    this.#stream = options.stream ?? process.stdout;
    this.#state = watch(this.#stream);
    this.#maxQueuedBytes = options.maxQueuedBytes ?? MAX_QUEUED_BYTES;
    this.#flushWaitMs = options.flushWaitMs ?? FLUSH_WAIT_MS;
  }

  write(text: string): boolean {
    const stream = this.#stream;
    if (this.#state.broken || stream.destroyed || stream.writableLength > this.#maxQueuedBytes) {
      this.#dropped += countLines(text);
      return false;
    }
    if (this.#dropped > 0) {
      stream.write(droppedLine(this.#dropped));
      this.#dropped = 0;
    }
    return stream.write(text);
  }

  /**
   * Calls back once what was written has left the process: at once unless a
   * pipe is backed up, and after at most `flushWaitMs` when its reader is
   * stalled (a shutdown must not wait on it).
   */
  flush(callback: (error?: Error) => void): void {
    const stream = this.#stream;
    if (stream.writableLength === 0 || this.#state.broken || stream.destroyed) {
      process.nextTick(callback);
      return;
    }
    let called = false;
    const done = (): void => {
      if (called) return;
      called = true;
      clearTimeout(timer);
      stream.off('close', done);
      callback();
    };
    const timer = setTimeout(done, this.#flushWaitMs).unref();
    stream.on('close', done);
    // Writes complete in order: an empty one completes once everything before it has left
    // (a 'drain' would come only if a write had gone past the high-water mark).
    stream.write('', () => done());
  }

  // Writes already went to the OS, or wait on a reader nothing here can hurry: nothing to force.
  flushSync(): void {}

  // Standard output is the process's, not ours to end.
  end(): void {}
}

function countLines(text: string): number {
  let lines = 0;
  for (let at = text.indexOf('\n'); at !== -1; at = text.indexOf('\n', at + 1)) lines++;
  return lines;
}

/** The one line that reports lost lines (a pino-shaped warn line: the batcher's lines are pino's). */
function droppedLine(dropped: number): string {
  return `${JSON.stringify({
    level: 'warn',
    time: Date.now(),
    service: 'switchyard',
    droppedLines: dropped,
    msg: 'log lines dropped: standard output was not being read',
  })}\n`;
}
