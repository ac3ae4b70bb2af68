/**
 * The gateway's own request ids: UUID version 7 (RFC 9562), a 48-bit Unix
 * millisecond timestamp followed by random bits, so ids sort by time.
 *
 * Why not `randomUUID()` (version 4): the ledger's primary key starts with the
 * request id, and random keys land all over the index, so every insert touches
 * a different B-tree page. Measured with SQLite on this project's ledger table
 * (200,000 rows, 500 per transaction): 22 µs per row with v4 ids, 4.7 µs with
 * time-ordered ones, and the gap grows with the table. PostgreSQL's B-trees
 * behave the same way.
 *
 * Within one millisecond the 12 bits after the version are a counter (RFC 9562
 * §6.2 method 1), so the ids one process hands out are strictly increasing;
 * the remaining 62 bits are random (crypto-strength), so ids from several
 * gateway processes never collide in practice.
 */
import { randomFillSync } from 'node:crypto';

const HEX: string[] = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));
/** Random bytes drawn 8 per id from a pool refilled in one call (a syscall per id would cost more than the rest). */
const pool = Buffer.allocUnsafe(4096);
let poolOffset = pool.length;
let lastMs = -1;
let counter = 0;

/** Offset of 8 fresh random bytes in `pool`. */
function randomBytes8(): number {
  if (poolOffset + 8 > pool.length) {
    randomFillSync(pool);
    poolOffset = 0;
  }
  const at = poolOffset;
  poolOffset += 8;
  return at;
}

export function requestId(): string {
  let ms = Date.now();
  if (ms > lastMs) {
    lastMs = ms;
    counter = 0;
  } else if (counter < 0xfff) {
    counter++;
    ms = lastMs;
  } else {
    // 4,096 ids in one millisecond: borrow the next millisecond (still ordered, still unique).
    lastMs++;
    counter = 0;
    ms = lastMs;
  }
  const at = randomBytes8();
  const b = pool;
  const high = Math.floor(ms / 0x1_0000_0000);
  const low = ms >>> 0;
  return (
    HEX[(high >>> 8) & 0xff]! +
    HEX[high & 0xff]! +
    HEX[low >>> 24]! +
    HEX[(low >>> 16) & 0xff]! +
    '-' +
    HEX[(low >>> 8) & 0xff]! +
    HEX[low & 0xff]! +
    '-' +
    HEX[0x70 | (counter >>> 8)]! +
    HEX[counter & 0xff]! +
    '-' +
    HEX[0x80 | (b[at]! & 0x3f)]! +
    HEX[b[at + 1]!]! +
    '-' +
    HEX[b[at + 2]!]! +
    HEX[b[at + 3]!]! +
    HEX[b[at + 4]!]! +
    HEX[b[at + 5]!]! +
    HEX[b[at + 6]!]! +
    HEX[b[at + 7]!]!
  );
}
