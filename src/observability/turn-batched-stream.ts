/**
 * Hands the log lines of one event-loop turn to the destination as one string.
 *
 * pino's destination (sonic-boom, asynchronous) appends each line to the
 * string it is collecting and measures that string's UTF-8 length on every
 * write: the collected string is a rope of concatenations, so every line made
 * V8 flatten (copy) up to the last 4 KB again, ~4.6 KB allocated per request
 * at c=50. Collected here in an array and joined once a turn, the destination
 * sees one flat string a turn: 3 µs less CPU a request (100.5 → 97.4 µs,
 * interleaved rounds; the info line had cost ~8.5 µs against LOG_LEVEL=warn).
 *
 * Order is kept (every line passes here); nothing waits longer than the end of
 * the turn, or `MAX_LINES` lines; `flush`, `flushSync` and the process's exit
 * hand over what is pending first.
 */
import type { DestinationStream } from 'pino';

/** What the stream needs of its destination (sonic-boom's methods). */
export interface LineDestination {
  write(text: string): boolean;
  flush?(callback: (error?: Error) => void): void;
  flushSync?(): void;
  end?(): void;
}

/** A turn that writes this many lines hands them over without waiting for its end. */
const MAX_LINES = 256;

export class TurnBatchedStream implements DestinationStream {
  readonly #target: LineDestination;
  #lines: string[] = [];
  #scheduled = false;
  readonly #endOfTurn = (): void => {
    this.#scheduled = false;
    this.handOver();
  };

  constructor(target: LineDestination) {
    this.#target = target;
    onExit(this);
  }

  write(line: string): boolean {
    this.#lines.push(line);
    if (this.#lines.length >= MAX_LINES) this.handOver();
    else if (!this.#scheduled) {
      this.#scheduled = true;
      setImmediate(this.#endOfTurn);
    }
    return true;
  }

  flush(callback: (error?: Error) => void): void {
    this.handOver();
    if (this.#target.flush) this.#target.flush(callback);
    else callback();
  }

  flushSync(): void {
    this.handOver();
    this.#target.flushSync?.();
  }

  end(): void {
    this.handOver();
    this.#target.end?.();
  }

  /** Hands the pending lines to the destination now. */
  handOver(): void {
    const lines = this.#lines;
    if (lines.length === 0) return;
    this.#lines = [];
    this.#target.write(lines.length === 1 ? lines[0]! : lines.join(''));
  }
}

/** Every stream made, weakly: one exit listener for all (a process may make many loggers, tests do). */
const streams = new Set<WeakRef<TurnBatchedStream>>();

function onExit(stream: TurnBatchedStream): void {
  if (streams.size === 0) {
    // Before pino's own exit hook, which flushes the destination synchronously.
    process.prependListener('exit', () => {
      for (const ref of streams) ref.deref()?.handOver();
    });
  }
  if (streams.size >= 64) {
    for (const ref of streams) if (ref.deref() === undefined) streams.delete(ref);
  }
  streams.add(new WeakRef(stream));
}
