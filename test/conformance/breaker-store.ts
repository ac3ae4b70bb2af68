/**
 * The circuit breaker store contract (src/resilience/breaker-store.ts), as
 * CircuitBreaker uses it, written once and run against every implementation:
 * breaker-store-memory.test.ts (MemoryBreakerStore, a manual clock) and
 * breaker-store-redis.test.ts (RedisBreakerStore on a real Redis, a fresh key
 * prefix per case). The `supersedes` rule exists twice, in TypeScript and in
 * Lua; every sequence of up to three transitions must end the same way in both.
 *
 * Stores opened from one harness share their state the way the instances of
 * one deployment do: for memory that is the one in-process store, for Redis
 * separate stores (separate subscriber connections) on one prefix. What
 * reaches a listener through Redis arrives asynchronously, so cases wait for
 * it with `eventually` (bounded polling; in memory the first check passes).
 * Probe TTLs elapse on the harness's manual clock where the store takes one;
 * in Redis they really elapse, so those cases use `shortTtlMs` and poll.
 *
 * Not covered here, on purpose: the Redis store's fallback to local state
 * while Redis is away, and an isolation never expiring in Redis (both are
 * Redis-only facts: test/integration/breaker-redis.test.ts); the 24 h expiry
 * of a stale state in Redis (memory keeps states for the life of the process).
 *
 * The next stateful stores (response cache, rate limiter, budget) follow the
 * same pattern: a `test/conformance/<store>.ts` exporting one function that
 * takes a factory of harnesses and registers `runConformance` cases, plus a
 * short test file per implementation, gaps listed with their reasons.
 *
 * Over 400 lines on purpose: it is one list of cases that together are the
 * contract, read top to bottom (state, the rule, announcements, permits,
 * breakers on top); split, a reader could not see what a store must do.
 */
import assert from 'node:assert/strict';
import {
  type BreakerStore,
  type SharedBreakerState,
  supersedes,
} from '../../src/resilience/breaker-store.ts';
import { CircuitBreaker } from '../../src/resilience/circuit-breaker.ts';
import {
  type ConformanceCase,
  eventually,
  type Gap,
  type Harness,
  manualClock,
  runConformance,
} from './harness.ts';

export interface BreakerStoreHarness extends Harness {
  /** Another instance of the deployment under test (memory: the same in-process store). */
  open(): Promise<BreakerStore>;
  /** Moves the store's clock; absent where time is the server's (Redis). */
  advance?: (ms: number) => void;
  /** A probe TTL short enough to wait out for real where there is no `advance`. */
  shortTtlMs: number;
}

/** A TTL no case outlives. */
const LONG_TTL_MS = 600_000;
/** Realistic epochs (ms timestamps): Lua must compare them exactly too. */
const T0 = 1_700_000_000_000;

type Kind = SharedBreakerState['state'];

function state(kind: Kind, epoch: number): SharedBreakerState {
  return { state: kind, epoch, openUntil: kind === 'open' ? epoch + 60_000 : 0 };
}

function label(shared: SharedBreakerState | undefined): string {
  return shared ? `${shared.state}@${shared.epoch - T0}` : 'none';
}

/** Listens on `store` and keeps what each breaker id heard, as `state@epoch` labels. */
function recorder(store: BreakerStore) {
  const heard = new Map<string, string[]>();
  let total = 0;
  const unsubscribe = store.subscribe((id, shared) => {
    total++;
    const list = heard.get(id) ?? [];
    list.push(label(shared));
    heard.set(id, list);
  });
  return { heard, unsubscribe, total: () => total, of: (id: string) => heard.get(id) ?? [] };
}

/** Every sequence of 1 to `length` transitions over states × the first three epochs. */
function sequences(length: number): SharedBreakerState[][] {
  const alphabet = (['closed', 'open', 'isolated'] as const).flatMap((kind) =>
    [0, 1, 2].map((e) => state(kind, T0 + e)),
  );
  const out: SharedBreakerState[][] = [];
  let frontier: SharedBreakerState[][] = [[]];
  for (let n = 1; n <= length; n++) {
    frontier = frontier.flatMap((seq) => alphabet.map((next) => [...seq, next]));
    out.push(...frontier);
  }
  return out;
}

/** Named cases of the rule, with the expected outcome written out rather than computed. */
const RULE: Array<{ name: string; publish: Array<[Kind, number]>; stands: string }> = [
  {
    name: 'a newer state replaces an older one',
    publish: [
      ['closed', 1],
      ['open', 2],
    ],
    stands: 'open@2',
  },
  {
    name: 'an older state never replaces a newer one',
    publish: [
      ['open', 2],
      ['closed', 1],
    ],
    stands: 'open@2',
  },
  {
    name: 'a close of the same epoch replaces an open (a probe of that period succeeded)',
    publish: [
      ['open', 2],
      ['closed', 2],
    ],
    stands: 'closed@2',
  },
  {
    name: 'an isolation replaces an older open',
    publish: [
      ['open', 1],
      ['isolated', 2],
    ],
    stands: 'isolated@2',
  },
  {
    name: 'a newer open does not lift an isolation',
    publish: [
      ['isolated', 1],
      ['open', 2],
    ],
    stands: 'isolated@1',
  },
  {
    name: 'a newer isolation does not replace an isolation',
    publish: [
      ['isolated', 1],
      ['isolated', 2],
    ],
    stands: 'isolated@1',
  },
  {
    name: 'a newer close (reset) lifts an isolation',
    publish: [
      ['isolated', 1],
      ['closed', 2],
    ],
    stands: 'closed@2',
  },
  {
    name: 'an older close does not lift an isolation',
    publish: [
      ['isolated', 2],
      ['closed', 1],
    ],
    stands: 'isolated@2',
  },
];

const cases: ConformanceCase<BreakerStoreHarness>[] = [
  {
    name: 'read: undefined for a breaker never published',
    async run(h) {
      const store = await h.open();
      assert.equal(await store.read('p/never'), undefined);
    },
  },
  {
    name: 'publish then read on another instance: the same state, epoch and openUntil',
    async run(h) {
      const [a, b] = [await h.open(), await h.open()];
      const shared: SharedBreakerState = { state: 'open', epoch: T0 + 5, openUntil: T0 + 65_005 };
      await a.publish('p/m', shared);
      assert.deepEqual(await b.read('p/m'), shared);
      await a.publish('p/other', state('isolated', T0));
      assert.deepEqual(await b.read('p/other'), state('isolated', T0));
    },
  },
  {
    name: 'supersedes, named cases: epochs order states; only a close lifts an isolation',
    async run(h) {
      const store = await h.open();
      for (const [i, c] of RULE.entries()) {
        for (const [kind, e] of c.publish) await store.publish(`rule${i}`, state(kind, T0 + e));
        assert.equal(label(await store.read(`rule${i}`)), c.stands, c.name);
      }
    },
  },
  {
    name: 'supersedes, every sequence of up to three transitions: the store agrees with the TypeScript rule and announces the state that stands after each',
    async run(h) {
      const [a, b] = [await h.open(), await h.open()];
      const listener = recorder(a);
      const all = sequences(3);
      const expected = all.map((seq) => {
        let standing: SharedBreakerState | undefined;
        return seq.map((next) => {
          if (supersedes(standing, next)) standing = next;
          return label(standing);
        });
      });
      // Sequences run side by side, each in order, published by two instances in turn.
      await Promise.all(
        all.map(async (seq, i) => {
          for (const [n, next] of seq.entries()) await (n % 2 === 0 ? a : b).publish(`seq${i}`, next);
        }),
      );
      const published = all.reduce((sum, seq) => sum + seq.length, 0);
      await eventually('every announcement arrived', () => listener.total() === published);
      const finals = await Promise.all(all.map(async (_, i) => label(await b.read(`seq${i}`))));
      const mismatches = all.flatMap((seq, i) => {
        const want = expected[i]!;
        const got = { final: finals[i], heard: listener.of(`seq${i}`) };
        return got.final === want.at(-1) && got.heard.join() === want.join()
          ? []
          : [
              `${seq.map((s) => label(s)).join(' → ')}: want ${want.join(', ')}; got ${got.heard.join(', ')} (read ${got.final})`,
            ];
      });
      assert.deepEqual(mismatches.slice(0, 10), [], `${mismatches.length} of ${all.length} sequences differ`);
    },
  },
  {
    name: "a publish reaches every instance's listeners, the publisher's own included; an unsubscribed listener hears no more",
    async run(h) {
      const [a, b] = [await h.open(), await h.open()];
      const onA = recorder(a);
      const onB = recorder(b);
      const stays = recorder(b);
      await a.publish('p/m', state('open', T0 + 1));
      await eventually('both heard it', () => onA.total() === 1 && onB.total() === 1 && stays.total() === 1);
      onB.unsubscribe();
      await a.publish('p/m', state('closed', T0 + 2));
      await eventually(
        'the remaining listeners heard the close',
        () => onA.total() === 2 && stays.total() === 2,
      );
      assert.deepEqual(onA.of('p/m'), ['open@1', 'closed@2']);
      assert.deepEqual(stays.of('p/m'), ['open@1', 'closed@2']);
      assert.deepEqual(onB.of('p/m'), ['open@1']);
    },
  },
  {
    name: 'a publish that loses announces the state that stands, so the losing instance adopts it',
    async run(h) {
      const [a, b] = [await h.open(), await h.open()];
      const onB = recorder(b);
      await a.publish('p/m', state('isolated', T0 + 1));
      await b.publish('p/m', state('open', T0 + 2));
      await eventually('two announcements', () => onB.total() === 2);
      assert.deepEqual(onB.of('p/m'), ['isolated@1', 'isolated@1']);
    },
  },
  {
    name: "a closed store's listeners hear nothing more",
    async run(h) {
      const closing = await h.open();
      const gone = recorder(closing);
      await closing.close();
      const other = await h.open();
      const live = recorder(other);
      await other.publish('p/m', state('open', T0 + 1));
      await eventually('a live listener heard it', () => live.total() === 1);
      assert.equal(gone.total(), 0);
    },
  },
  {
    name: 'probe permits: at most max held at once across instances; a release frees one',
    async run(h) {
      const [a, b] = [await h.open(), await h.open()];
      assert.equal(await a.acquireProbe('p/m', T0, 2, LONG_TTL_MS), true);
      assert.equal(await b.acquireProbe('p/m', T0, 2, LONG_TTL_MS), true);
      assert.equal(await a.acquireProbe('p/m', T0, 2, LONG_TTL_MS), false, 'both permits are held');
      assert.equal(await b.acquireProbe('p/m', T0, 2, LONG_TTL_MS), false);
      await a.releaseProbe('p/m', T0);
      assert.equal(await b.acquireProbe('p/m', T0, 2, LONG_TTL_MS), true, 'the released permit');
      assert.equal(await a.acquireProbe('p/m', T0, 2, LONG_TTL_MS), false);
      assert.equal(await a.acquireProbe('p/other', T0, 2, LONG_TTL_MS), true, 'each breaker has its own');
    },
  },
  {
    name: 'probe permits: releasing more than was taken frees nothing extra',
    async run(h) {
      const store = await h.open();
      await store.releaseProbe('p/m', T0);
      assert.equal(await store.acquireProbe('p/m', T0, 1, LONG_TTL_MS), true);
      await store.releaseProbe('p/m', T0);
      await store.releaseProbe('p/m', T0);
      assert.equal(await store.acquireProbe('p/m', T0, 1, LONG_TTL_MS), true);
      assert.equal(await store.acquireProbe('p/m', T0, 1, LONG_TTL_MS), false, 'still one at most');
    },
  },
  {
    name: 'probe permits belong to one open period: a new epoch has its own, an old release does not free them',
    async run(h) {
      const [a, b] = [await h.open(), await h.open()];
      assert.equal(await a.acquireProbe('p/m', T0 + 1, 1, LONG_TTL_MS), true);
      assert.equal(await b.acquireProbe('p/m', T0 + 2, 1, LONG_TTL_MS), true, 'the next period starts empty');
      await a.releaseProbe('p/m', T0 + 1);
      assert.equal(
        await b.acquireProbe('p/m', T0 + 2, 1, LONG_TTL_MS),
        false,
        'a stale holder frees nothing',
      );
    },
  },
  {
    name: 'a permit never released lapses at its TTL, on every instance',
    async run(h) {
      const [a, b] = [await h.open(), await h.open()];
      const ttl = h.shortTtlMs;
      assert.equal(await a.acquireProbe('p/m', T0, 1, ttl), true);
      if (h.advance) {
        h.advance(ttl - 1);
        assert.equal(await b.acquireProbe('p/m', T0, 1, ttl), false, 'held until the TTL');
        h.advance(1);
      }
      // The holder crashed: nothing releases it.
      await eventually('the permit lapsed', () => b.acquireProbe('p/m', T0, 1, LONG_TTL_MS));
      assert.equal(await a.acquireProbe('p/m', T0, 1, LONG_TTL_MS), false, 'and B holds the one permit now');
    },
  },
  {
    name: "permits lapse together, at the latest grant's TTL",
    async run(h) {
      const store = await h.open();
      assert.equal(await store.acquireProbe('p/m', T0, 2, LONG_TTL_MS), true);
      assert.equal(await store.acquireProbe('p/m', T0, 2, h.shortTtlMs), true);
      if (h.advance) {
        h.advance(h.shortTtlMs - 1);
        assert.equal(await store.acquireProbe('p/m', T0, 2, LONG_TTL_MS), false);
        h.advance(1);
      }
      await eventually('both permits lapsed', () => store.acquireProbe('p/m', T0, 2, LONG_TTL_MS));
      assert.equal(await store.acquireProbe('p/m', T0, 2, LONG_TTL_MS), true, 'the second is free too');
    },
  },
  {
    name: 'probe successes are counted per open period across instances, and outlive lapsed permits',
    async run(h) {
      const [a, b] = [await h.open(), await h.open()];
      assert.equal(await a.probeSucceeded('p/m', T0 + 1), 1);
      assert.equal(await b.probeSucceeded('p/m', T0 + 1), 2);
      assert.equal(await a.probeSucceeded('p/m', T0 + 2), 1, 'a new period counts from zero');
      assert.equal(await a.probeSucceeded('p/other', T0 + 1), 1, 'each breaker has its own');

      assert.equal(await a.acquireProbe('p/m', T0 + 2, 1, h.shortTtlMs), true);
      h.advance?.(h.shortTtlMs);
      await eventually('the permit lapsed', () => b.acquireProbe('p/m', T0 + 2, 1, LONG_TTL_MS));
      assert.equal(await b.probeSucceeded('p/m', T0 + 2), 2);
    },
  },
  {
    name: 'breakers on two instances: one opens it, both see it; one probe between them; its success closes both',
    async run(h) {
      const clock = manualClock();
      const options = { id: 'p/m', clock: clock.now, failureThreshold: 1, recoveryTimeoutMs: 1_000 };
      const a = new CircuitBreaker({ ...options, store: await h.open(), probeTtlMs: LONG_TTL_MS });
      const b = new CircuitBreaker({ ...options, store: await h.open(), probeTtlMs: LONG_TTL_MS });
      try {
        await a.trip();
        await eventually('B sees it open', () => b.state === 'open');
        assert.equal(await b.acquire(), undefined);
        clock.advance(1_000);
        assert.deepEqual([a.state, b.state], ['half_open', 'half_open']);
        const probe = await b.acquire();
        assert.equal(probe?.probe, true);
        assert.equal(await a.acquire(), undefined, 'B holds the only probe permit');
        await probe!.success();
        assert.equal(b.state, 'closed');
        await eventually('A sees it closed', () => a.state === 'closed');
      } finally {
        a.dispose();
        b.dispose();
      }
    },
  },
  {
    name: 'isolate on one instance holds every instance, calls in flight cannot lift it, a reset on another does',
    async run(h) {
      const clock = manualClock();
      const options = { id: 'p/m', clock: clock.now, failureThreshold: 1, recoveryTimeoutMs: 1 };
      const a = new CircuitBreaker({ ...options, store: await h.open() });
      const b = new CircuitBreaker({ ...options, store: await h.open() });
      try {
        const inFlight = await b.acquire();
        await a.isolate();
        await eventually('B sees the isolation', () => b.state === 'isolated');
        clock.advance(10);
        await inFlight!.failure();
        clock.advance(3_600_000);
        assert.deepEqual([a.state, b.state], ['isolated', 'isolated']);
        assert.equal(await b.acquire(), undefined, 'no probe while isolated');
        assert.equal((await h.open().then((s) => s.read('p/m')))?.state, 'isolated');
        await b.reset();
        await eventually('A sees the reset', () => a.state === 'closed');
        assert.equal((await a.acquire())?.probe, false);
      } finally {
        a.dispose();
        b.dispose();
      }
    },
  },
  {
    name: 'a breaker that opens after an isolation it has not heard of adopts the isolation; one started later syncs it',
    async run(h) {
      const clock = manualClock();
      await (await h.open()).publish('p/m', { state: 'isolated', epoch: clock.now(), openUntil: 0 });
      clock.advance(50);
      const options = { id: 'p/m', clock: clock.now, failureThreshold: 1, recoveryTimeoutMs: 1 };
      const late = new CircuitBreaker({ ...options, store: await h.open() });
      let fresh: CircuitBreaker | undefined;
      try {
        await late.trip();
        await eventually('its newer opening lost to the stored isolation', () => late.state === 'isolated');
        clock.advance(1_000);
        assert.equal(await late.acquire(), undefined, 'and it admits no probe');
        // Everything has been announced: a breaker created now hears nothing and must ask.
        fresh = new CircuitBreaker({ ...options, store: await h.open() });
        assert.equal(fresh.state, 'closed');
        await fresh.sync();
        assert.equal(fresh.state, 'isolated');
      } finally {
        late.dispose();
        fresh?.dispose();
      }
    },
  },
];

/** Registers the breaker store suite for one implementation. */
export function breakerStoreConformance(
  implementation: string,
  factory: () => Promise<BreakerStoreHarness>,
  gaps: readonly Gap[] = [],
): void {
  runConformance(`BreakerStore conformance: ${implementation}`, cases, factory, gaps);
}
