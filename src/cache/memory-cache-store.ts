/**
 * L1: an in-process LRU bounded in bytes, with per-entry expiry.
 *
 * A Map keeps insertion order, so re-inserting an entry on every hit makes
 * the first key the least recently used one: eviction takes from the front
 * until the new entry fits. Expired entries are dropped when met (a hit that
 * finds one, or eviction reaching it); the byte bound holds regardless.
 *
 * Sizes count the stored text's characters plus a fixed overhead per entry:
 * V8 keeps ASCII text (nearly all JSON answers) at one byte a character.
 */
import {
  type CacheEntry,
  type CacheFilter,
  type CacheKey,
  type CacheStore,
  cacheKeyString,
  matchesFilter,
} from './cache-store.ts';

/** Map slot, entry object, key string and fields: measured ~200 bytes of heap besides the text. */
const ENTRY_OVERHEAD_BYTES = 256;

interface Slot {
  entry: CacheEntry;
  bytes: number;
}

export class MemoryCacheStore implements CacheStore {
  readonly tier = 'memory' as const;
  readonly #maxBytes: number;
  readonly #clock: () => number;
  readonly #slots = new Map<string, Slot>();
  /** The slot last in `#slots`' order (set or moved last), when known. */
  #newest: Slot | undefined;
  #bytes = 0;

  constructor(options: { maxBytes: number; clock?: () => number }) {
    if (!(options.maxBytes >= 0)) throw new RangeError('MemoryCacheStore: maxBytes must be >= 0');
    this.#maxBytes = options.maxBytes;
    this.#clock = options.clock ?? Date.now;
  }

  get entries(): number {
    return this.#slots.size;
  }

  get bytes(): number {
    return this.#bytes;
  }

  async get(key: CacheKey): Promise<CacheEntry | undefined> {
    return this.getNow(key);
  }

  /** The synchronous lookup (L1 needs no promise: a hit is answered in the same turn). */
  getNow(key: CacheKey): CacheEntry | undefined {
    const name = cacheKeyString(key);
    const slot = this.#slots.get(name);
    if (slot === undefined) return undefined;
    if (slot.entry.expiresAt <= this.#clock()) {
      this.#remove(name);
      return undefined;
    }
    // Most recently used goes last (eviction takes the first); the last one is already there.
    if (slot !== this.#newest) {
      this.#slots.delete(name);
      this.#slots.set(name, slot);
      this.#newest = slot;
    }
    return slot.entry;
  }

  async set(key: CacheKey, entry: CacheEntry): Promise<void> {
    this.setNow(key, entry);
  }

  setNow(key: CacheKey, entry: CacheEntry): void {
    const name = cacheKeyString(key);
    const bytes = entry.body.length + name.length + ENTRY_OVERHEAD_BYTES;
    this.#remove(name);
    // Larger than the whole cache: not kept (and nothing evicted for it).
    if (bytes > this.#maxBytes) return;
    for (const [oldest, slot] of this.#slots) {
      if (this.#bytes + bytes <= this.#maxBytes) break;
      this.#slots.delete(oldest);
      this.#bytes -= slot.bytes;
    }
    this.#newest = { entry, bytes };
    this.#slots.set(name, this.#newest);
    this.#bytes += bytes;
  }

  async invalidate(filter: CacheFilter): Promise<number> {
    let removed = 0;
    for (const [name, slot] of this.#slots) {
      if (!matchesFilter(slot.entry, filter)) continue;
      this.#slots.delete(name);
      this.#bytes -= slot.bytes;
      removed++;
    }
    return removed;
  }

  #remove(name: string): void {
    const slot = this.#slots.get(name);
    if (slot === undefined) return;
    this.#slots.delete(name);
    this.#bytes -= slot.bytes;
    if (slot === this.#newest) this.#newest = undefined;
  }
}
