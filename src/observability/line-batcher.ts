/**
 * Collects log lines and hands them to the destination (stdout-destination.ts)
 * in batches of ~16 KB, or whatever is pending every `flushMs`: one write
 * serves some forty request lines under load.
 *
 * Collected in an array and joined once per batch, so the destination sees
 * one flat string per write. (Handed single lines, the sonic-boom destination
 * used before re-copied its whole collected string on each: ~4.6 KB
 * allocated per request at c=50.)
 *
 * Order is kept (every line passes here); a line waits at most `flushMs`
 * (a quiet gateway's lines still show up while it runs, and a kill -9 loses
 * at most that much); `flush`, `flushSync`, `end` and the process's exit hand
 * over what is pending first.
 */
import type { DestinationStream } from 'pino';

/** What the batcher needs of its destination (sonic-boom's method names, which pino calls too). */
export interface LineDestination {
  write(text: string): boolean;
  flush?(callback: (error?: Error) => void): void;
  flushSync?(): void;
  end?(): void;
}

/** Pending lines are handed over once they hold this many characters. */
export const BATCH_CHARS = 16 * 1024;

export class LineBatcher implements DestinationStream {
  readonly #target: LineDestination;
  readonly #flushMs: number;
  #lines: string[] = [];
  #chars = 0;
  #timer: NodeJS.Timeout | undefined;
  readonly #onTimer = (): void => {
    this.#timer = undefined;
    this.handOver();
  };

  constructor(target: LineDestination, flushMs: number) {
    this.#target = target;
    this.#flushMs = flushMs;
    onExit(this);
  }

  write(line: string): boolean {
    this.#lines.push(line);
    this.#chars += line.length;
    if (this.#chars >= BATCH_CHARS) this.handOver();
    else if (this.#timer === undefined) {
      // Not keeping the process alive: exit hands over what is pending.
      this.#timer = setTimeout(this.#onTimer, this.#flushMs).unref();
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
    clearTimeout(this.#timer);
    this.#target.end?.();
  }

  /** Hands the pending lines to the destination now. */
  handOver(): void {
    const lines = this.#lines;
    if (lines.length === 0) return;
    this.#lines = [];
    this.#chars = 0;
    this.#target.write(lines.length === 1 ? lines[0]! : lines.join(''));
  }
}

/** Every batcher made, weakly: one exit listener for all (a process may make many loggers, tests do). */
const batchers = new Set<WeakRef<LineBatcher>>();

function onExit(batcher: LineBatcher): void {
  if (batchers.size === 0) {
    // Before pino's own exit hook, which flushes the destination synchronously.
    process.prependListener('exit', () => {
      for (const ref of batchers) ref.deref()?.handOver();
    });
  }
  if (batchers.size >= 64) {
    for (const ref of batchers) if (ref.deref() === undefined) batchers.delete(ref);
  }
  batchers.add(new WeakRef(batcher));
}
