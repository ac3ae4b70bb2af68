/**
 * What every ConcurrencyStore must do: grant at most `max` slots of a subject
 * at once across every connection, free a slot on release (once, however often
 * it is released), keep subjects apart. That a lease lapses (the slots of a
 * holder that crashed free themselves) is the Redis store's own test: an
 * in-process slot dies with its process.
 */
import assert from 'node:assert/strict';
import type { ConcurrencyStore } from '../../src/limits/concurrency-store.ts';
import { type ConformanceCase, type Harness, runConformance } from './harness.ts';

export interface ConcurrencyHarness extends Harness {
  /** A store sharing its slots with every other one this harness opened (another instance). */
  open(): Promise<ConcurrencyStore>;
}

const cases: ConformanceCase<ConcurrencyHarness>[] = [
  {
    name: 'grants exactly max slots to a concurrent burst over every connection',
    async run(h) {
      const stores = [await h.open(), await h.open(), await h.open()];
      const results = await Promise.all(
        Array.from({ length: 60 }, (_, i) => stores[i % 3]!.acquire('key:a', 7)),
      );
      assert.equal(results.filter((r) => r.slot !== undefined).length, 7);
      assert.ok(results.every((r) => r.held <= 7));
    },
  },
  {
    name: 'a release frees one slot, once however often it is called',
    async run(h) {
      const store = await h.open();
      const first = await store.acquire('key:b', 2);
      const second = await store.acquire('key:b', 2);
      assert.ok(first.slot && second.slot);
      assert.equal((await store.acquire('key:b', 2)).slot, undefined);
      await first.slot.release();
      await first.slot.release();
      const third = await store.acquire('key:b', 2);
      assert.ok(third.slot, 'the released slot is free again');
      assert.equal(third.held, 2);
      assert.equal((await store.acquire('key:b', 2)).slot, undefined, 'a second release freed nothing more');
    },
  },
  {
    name: 'subjects are counted apart',
    async run(h) {
      const store = await h.open();
      assert.ok((await store.acquire('key:c1', 1)).slot);
      assert.ok((await store.acquire('key:c2', 1)).slot);
      assert.equal((await store.acquire('key:c1', 1)).slot, undefined);
    },
  },
];

export function concurrencyStoreConformance(name: string, factory: () => Promise<ConcurrencyHarness>): void {
  runConformance(`concurrency store conformance: ${name}`, cases, factory);
}
