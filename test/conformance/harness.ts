/**
 * What every conformance suite shares. A suite (test/conformance/<store>.ts)
 * is a list of cases written once against an interface; each implementation
 * runs it from a short `<store>-<implementation>.test.ts` that supplies a
 * factory. The factory returns a harness, fresh for every case, so no case
 * sees another's state: memory gets a new store, Redis a new key prefix.
 *
 * An implementation that cannot honour a case lists it as a gap with the
 * reason (it is reported as skipped, never silently dropped); a gap naming no
 * case is an error, so a renamed case cannot leave a stale excuse behind.
 */
import { describe, test } from 'node:test';

export interface Harness {
  /** Closes every store the case opened and removes what it wrote. */
  close(): Promise<void>;
}

export interface ConformanceCase<H extends Harness> {
  name: string;
  run(harness: H): Promise<void>;
}

export interface Gap {
  test: string;
  reason: string;
}

export function runConformance<H extends Harness>(
  suite: string,
  cases: readonly ConformanceCase<H>[],
  factory: () => Promise<H>,
  gaps: readonly Gap[] = [],
): void {
  for (const gap of gaps) {
    if (!cases.some((c) => c.name === gap.test))
      throw new Error(`${suite}: gap for an unknown case '${gap.test}'`);
  }
  describe(suite, () => {
    for (const c of cases) {
      const gap = gaps.find((g) => g.test === c.name);
      test(c.name, gap ? { skip: gap.reason } : {}, async () => {
        const harness = await factory();
        try {
          await c.run(harness);
        } finally {
          await harness.close();
        }
      });
    }
  });
}

/**
 * Resolves once `check` holds, polling every few milliseconds up to a bound;
 * for what arrives asynchronously (pub/sub) or a TTL that must really elapse.
 * An in-process store passes on the first check: nothing waits.
 */
export async function eventually(
  what: string,
  check: () => boolean | Promise<boolean>,
  { timeoutMs = 3_000, intervalMs = 5 }: { timeoutMs?: number; intervalMs?: number } = {},
): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!(await check())) {
    if (performance.now() > deadline) throw new Error(`${what}: not true within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/** A clock the test moves by hand. */
export function manualClock(start = 1_000_000): { now: () => number; advance: (ms: number) => void } {
  let now = start;
  return {
    now: () => now,
    advance: (ms) => {
      now += ms;
    },
  };
}
