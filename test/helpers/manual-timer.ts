/** Timers a test fires by hand (the Batcher's `timer`): time passes only when the test says. */
import type { BatchTimer } from '../../src/util/batcher.ts';

export class ManualTimer implements BatchTimer {
  readonly scheduled = new Map<number, { callback: () => void; ms: number }>();
  #next = 0;

  set(callback: () => void, ms: number): number {
    this.#next++;
    this.scheduled.set(this.#next, { callback, ms });
    return this.#next;
  }

  clear(handle: unknown): void {
    this.scheduled.delete(handle as number);
  }

  /** Fires every timer set so far (not those their callbacks set). */
  fireAll(): void {
    for (const [id, { callback }] of [...this.scheduled]) {
      this.scheduled.delete(id);
      callback();
    }
  }
}
