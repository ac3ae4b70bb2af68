/**
 * `npm run bench:first-byte`: where a stream's first byte goes, the gateway beside the
 * pass-through, in bursts.
 *
 * compare.sh's stream test starts its 20 streams at once, and the mock's 5 ms timers keep
 * them together, so its first-byte median is set by bursts: K requests arrive in one poll,
 * each proxy runs their synchronous starts one after another, and undici writes a request
 * on a reused keep-alive socket only in the check phase after that poll (its idle-socket
 * validation), so every upstream request of the burst waits for every start; then the
 * answers come back and each first chunk is relayed in turn. The median stream waits for
 * about K starts and K/2 relays. Whole-test medians swing by a millisecond with how
 * clustered a round happened to be; this tool measures the two costs themselves, per
 * request, from the proxies' own diagnostics channels (bench/first-byte-probe.mjs):
 *
 *   start   the time from one upstream request made to the next within a burst: one
 *           request's parse, routing, auth, body and dispatch (median over bursts)
 *   relay   the time between consecutive upstream answers' headers within a burst: one
 *           first chunk read, relayed and written (an upper bound when the upstream,
 *           on the load generator's core, is the slower side)
 *   first byte  as the client saw it: the median stream, and the burst's earliest
 *
 * and each whole burst's timeline from its first request event: when the last of its
 * requests was taken in (the proxy's pace at starts, or the client's when the proxy is
 * faster), when the first upstream request was written (after the poll that took them
 * in), when the first answer's headers were read. Where the gateway's first byte goes in
 * a burst shows here: on 2026-12-02 all taken in at 1.84 ms against the pass-through's
 * 0.69 (the client's pace), the first upstream request written at 0.74 against 0.19, the
 * first answer read at 2.37 against 0.97.
 *
 * Whole bursts are not what compare.sh's first byte mostly sees, though: the mock's 5 ms
 * timers spread the 20 workers into small groups a few milliseconds apart, so about a third
 * of its streams start on a proxy that has been idle for 0.2-3 ms (and most of the rest
 * right after a little other work), its caches and branch predictors cooled by whatever ran
 * meanwhile. A start then costs several times its in-burst figure, in proportion to the
 * code and data it touches. So the tool also sends single streams, each after the last one
 * ended and an idle gap (FIRST_BYTE_IDLE_MS, 2), and then streams as compare.sh's stream
 * test sends them (K workers, each sending its next stream as its last one ends;
 * FIRST_BYTE_STEADY in all), and splits each stream's first byte at the probe's marks,
 * lined up with the client's own send and first byte (one monotonic clock):
 *
 *   wait       the client's send to the request parsed (Q): the proxy busy with other work
 *   start      Q to the upstream request made (C); the gateway's part to its route handler
 *              (Fastify, the onRequest hooks, the body) is also printed when Fastify served
 *              the streams (the model lane, src/server/lane, serves them without it)
 *   to write   C to the upstream request written (S): the rest of the turn, other events
 *              of the same poll, the check phase
 *   answer     S to the answer's headers read (R): the upstream, and the proxy busy meanwhile
 *   relay      R to the first write to the client (W)
 *   to client  W to the client's first byte
 *
 * and, for the steady streams, `to write` and `answer` again where no other request's mark
 * fell inside them: the proxy's own path with less of the other requests' work in it. On
 * 2026-12-02 (a slower machine than the figures above), single streams: start 544 against
 * 186 µs (327 of it to the route handler), to write 67 against 32, first byte +474; steady:
 * first byte +551 (+297 in the run before), of which waiting +153, start +111, to write
 * +175 (alone +74), answer +161, relay +21: most of it the gateway busy with other streams.
 *
 * Last, the same requests answered in one piece (JSON), one at a time after the idle gap:
 * where a cooled request's whole time goes (compare.sh's 200 requests a second are such
 * requests), split at the same marks plus E, the upstream's answer read whole: wait, start,
 * to write, answer, body, the answer path (E to the first write to the client: for the
 * gateway, the parse, the bill, the ledger spool's write and the answer's write), to client.
 * On 2026-12-02 (evening): all 956 against 823 µs, of which start +72 and answer path +67,
 * the rest even. With the path marked inside (a build instrumented for the purpose, not
 * kept) in a slower phase, start 557 against 225 µs and answer path 273 against 16: the
 * gateway's extra is spread over some twenty steps of 10-60 µs each when cooled (the body's
 * read 100, the upstream body's parse 50, the spool's write 60, the ledger row 45, the
 * provider's request and undici's dispatch 110), no one of them a block to cut.
 *
 * Both proxies run pinned to CPU 1 with the probe preloaded, the load and the mock
 * (bench/bench-upstream.ts, a frame every 5 ms) on CPU 0; paths take turns by round.
 * Environment: FIRST_BYTE_K (20) streams a burst, FIRST_BYTE_BURSTS (30) a round,
 * FIRST_BYTE_SINGLES (40) single streams a round, FIRST_BYTE_IDLE_MS (2), FIRST_BYTE_STEADY (400)
 * streams a round in the steady load, FIRST_BYTE_ROUNDS (3).
 */
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { chatTarget, checkStream, streamBody } from './chat-workload.ts';
import { childEnv, prepareGateway, startGateway } from './gateway-process.ts';
import { Errors, inTurns, makePool, type Outcome, once, percentiles, type Target } from './load.ts';
import { cpuCount, killAll, pinSelf, type Started, startNode } from './procs.ts';
import { envNum, GENERATOR_FLAGS, LOAD_CPU, PROXY_CPU, PROXY_NODE_FLAGS, ROOT } from './settings.ts';

/** A count from the environment: at least one. */
const count = (name: string, fallback: number): number => Math.max(1, Math.round(envNum(name, fallback)));
const K = count('FIRST_BYTE_K', 20);
const BURSTS = count('FIRST_BYTE_BURSTS', 30);
const ROUNDS = count('FIRST_BYTE_ROUNDS', 3);
const SINGLES = count('FIRST_BYTE_SINGLES', 40);
const IDLE_MS = envNum('FIRST_BYTE_IDLE_MS', 2);
const STEADY = count('FIRST_BYTE_STEADY', 400);
const PROBE = join(ROOT, 'bench/first-byte-probe.mjs');
/** A request this long after the last one starts a new burst; marks this long after a burst's first are not its. */
const BURST_GAP_MS = 50;

interface Path {
  name: string;
  proc: Started;
  target: Target;
  firstBytes: number[];
  earliest: number[];
  starts: number[];
  relays: number[];
  /** Per whole burst, from its first request event: its last one, its first upstream write, its first answer read. */
  takenIn: number[];
  firstWrite: number[];
  firstAnswer: number[];
  /** Single streams after an idle gap, each split at the probe's marks. */
  idle: Split[];
  /** Streams sent as compare.sh's stream test sends them, each split at the probe's marks. */
  steady: Split[];
  /** The same requests answered in one piece (JSON), one at a time after an idle gap. */
  jsonTarget: Target;
  answers: AnswerSplit[];
  errors: Errors;
}

/**
 * One stream's first byte split at the probe's marks, µs: waiting to be read (the client's
 * send to Q), the proxy's start (Q to C; to the route handler, Q to H, where there is one),
 * to the upstream write (C to S), the upstream's answer until read (S to R), the relay
 * (R to W), on to the client's first byte. The two waits that other requests' work can
 * lengthen are also kept for streams with no other request's mark inside them (`alone`).
 */
interface Split {
  wait: number;
  start: number;
  toHandler: number | undefined;
  toWrite: number;
  answer: number;
  relay: number;
  toClient: number;
  firstByte: number;
  toWriteAlone: number | undefined;
  answerAlone: number | undefined;
}

/**
 * One JSON answer's time split at the probe's marks, µs: waiting to be read (send to Q),
 * the proxy's start (Q to C), to the upstream write (C to S), the upstream until its
 * answer's headers are read (S to R), the rest of its body (R to E), the proxy's answer
 * path (E to W: for the gateway, the parse, the bill, the ledger spool's write and the
 * answer's write), on to the client's last byte; the client's whole time.
 */
interface AnswerSplit {
  wait: number;
  start: number;
  toWrite: number;
  answer: number;
  body: number;
  answerPath: number;
  toClient: number;
  total: number;
}

/** The median, to the µs. */
const median = (xs: number[]): number => Math.round(percentiles(xs).p50);

/** The gaps between consecutive marks of `kind` in each burst, µs. */
function gaps(marks: (string | number)[], kind: string): number[] {
  const out: number[] = [];
  let burstStart = Number.NEGATIVE_INFINITY;
  let lastRequest = Number.NEGATIVE_INFINITY;
  let previous: number | undefined;
  for (let i = 0; i < marks.length; i += 2) {
    const k = marks[i] as string;
    const t = marks[i + 1] as number;
    if (k === 'Q') {
      if (t - lastRequest > BURST_GAP_MS) {
        burstStart = t;
        previous = undefined;
      }
      lastRequest = t;
    }
    if (k !== kind || t - burstStart > BURST_GAP_MS) continue;
    if (previous !== undefined) out.push(Math.round((t - previous) * 1000));
    previous = t;
  }
  return out;
}

/**
 * Each whole burst's timeline (µs from its first request event): the last of its K
 * requests taken in, its first upstream request written, its first answer's headers read.
 */
function timelines(
  marks: (string | number)[],
): { takenIn: number; firstWrite: number; firstAnswer: number }[] {
  const out: { takenIn: number; firstWrite: number; firstAnswer: number }[] = [];
  let burst: { first: number; last: number; requests: number; write?: number; answer?: number } | undefined;
  const close = () => {
    if (burst?.requests === K && burst.write !== undefined && burst.answer !== undefined) {
      const since = (t: number) => us(t - burst!.first);
      out.push({
        takenIn: since(burst.last),
        firstWrite: since(burst.write),
        firstAnswer: since(burst.answer),
      });
    }
  };
  for (let i = 0; i < marks.length; i += 2) {
    const k = marks[i] as string;
    const t = marks[i + 1] as number;
    if (k === 'Q') {
      if (burst === undefined || t - burst.last > BURST_GAP_MS) {
        close();
        burst = { first: t, last: t, requests: 0 };
      }
      burst.last = t;
      burst.requests++;
    } else if (burst !== undefined && t - burst.first <= BURST_GAP_MS) {
      if (k === 'S') burst.write ??= t;
      else if (k === 'R') burst.answer ??= t;
    }
  }
  close();
  return out;
}

/** One request's marks as the probe linked them (CLOCK_MONOTONIC ms; absent: not reached). */
interface ProbedRequest {
  Q: number;
  H?: number;
  C?: number;
  S?: number;
  R?: number;
  E?: number;
  W?: number;
}

interface Probe {
  marks: (string | number)[];
  requests: ProbedRequest[];
}

async function readProbe(pid: number): Promise<Probe> {
  const file = join(tmpdir(), `first-byte-probe-${pid}.json`);
  rmSync(file, { force: true });
  process.kill(pid, 'SIGUSR2');
  // The proxy writes it from its signal handler (whole: renamed into place); bounded wait.
  for (let i = 0; i < 200 && !existsSync(file); i++) await sleep(10);
  const probe = JSON.parse(readFileSync(file, 'utf8')) as Probe;
  rmSync(file, { force: true });
  return probe;
}

async function bursts(path: Path): Promise<void> {
  const pool = makePool(path.target.origin, K);
  const burst = () => Promise.all(Array.from({ length: K }, () => once(pool, path.target, path.errors)));
  for (let i = 0; i < 3; i++) await burst();
  await readProbe(path.proc.pid); // the warm-up's marks
  for (let b = 0; b < BURSTS; b++) {
    const outcomes = await burst();
    const ttfb = outcomes.filter((o) => o.ok).map((o) => o.ttfbUs);
    path.firstBytes.push(...ttfb);
    path.earliest.push(Math.min(...ttfb));
  }
  await pool.close();
  const { marks } = await readProbe(path.proc.pid);
  // Only the requests of a burst made back to back count as starts: the burst's first
  // waits for its own request to arrive, and the gap after an answer is not a start.
  path.starts.push(...gaps(marks, 'C').filter((us) => us < 1000));
  path.relays.push(...gaps(marks, 'R').filter((us) => us < 1000));
  for (const t of timelines(marks)) {
    path.takenIn.push(t.takenIn);
    path.firstWrite.push(t.firstWrite);
    path.firstAnswer.push(t.firstAnswer);
  }
}

async function steady(path: Path): Promise<void> {
  const pool = makePool(path.target.origin, K);
  await inTurns(pool, path.target, 100, K, path.errors);
  await readProbe(path.proc.pid); // the warm-up's marks
  const outcomes = await inTurns(pool, path.target, STEADY, K, path.errors);
  await pool.close();
  path.steady.push(...splitStreams(outcomes, (await readProbe(path.proc.pid)).requests));
}

/** CLOCK_MONOTONIC milliseconds as whole µs. */
const us = (ms: number): number => Math.round(ms * 1000);

/**
 * Each client request that succeeded with the proxy's request it became: the first request
 * parsed after it was sent, in send order. Two sends racing on different connections may be
 * paired crosswise; that swaps only their waits and their to-client legs, which the medians
 * read alike.
 */
function paired(
  outcomes: Outcome[],
  requests: ProbedRequest[],
): { outcome: Outcome; sentAtMs: number; request: ProbedRequest }[] {
  const sent = outcomes
    .filter((o) => o.ok && o.sentAtMs !== undefined)
    .sort((a, b) => a.sentAtMs! - b.sentAtMs!);
  const byQ = [...requests].sort((a, b) => a.Q - b.Q);
  const out: { outcome: Outcome; sentAtMs: number; request: ProbedRequest }[] = [];
  let j = 0;
  for (const outcome of sent) {
    const sentAtMs = outcome.sentAtMs!;
    while (j < byQ.length && byQ[j]!.Q < sentAtMs) j++;
    const request = byQ[j++];
    if (request === undefined) break;
    out.push({ outcome, sentAtMs, request });
  }
  return out;
}

/** Each client stream's first byte split at the marks of the proxy's request it became. */
function splitStreams(outcomes: Outcome[], requests: ProbedRequest[]): Split[] {
  // Every request's Q and R: what another request's work inside a stream's wait is seen by.
  const events = Float64Array.from(requests.flatMap((r) => (r.R === undefined ? [r.Q] : [r.Q, r.R]))).sort();
  const inside = (from: number, to: number) => countBelow(events, to, false) - countBelow(events, from, true);
  const out: Split[] = [];
  for (const { outcome: o, sentAtMs, request: r } of paired(outcomes, requests)) {
    if (r.C === undefined || r.S === undefined || r.R === undefined || r.W === undefined) continue;
    const firstByteAt = sentAtMs + o.ttfbUs / 1000;
    out.push({
      wait: us(r.Q - sentAtMs),
      start: us(r.C - r.Q),
      toHandler: r.H === undefined ? undefined : us(r.H - r.Q),
      toWrite: us(r.S - r.C),
      answer: us(r.R - r.S),
      relay: us(r.W - r.R),
      toClient: us(firstByteAt - r.W),
      firstByte: Math.round(o.ttfbUs),
      toWriteAlone: inside(r.C, r.S) === 0 ? us(r.S - r.C) : undefined,
      answerAlone: inside(r.S, r.R) === 0 ? us(r.R - r.S) : undefined,
    });
  }
  return out;
}

/** How many values of the sorted `a` are below `x` (at most `x` with `orEqual`). */
function countBelow(a: Float64Array, x: number, orEqual: boolean): number {
  let lo = 0;
  let hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const v = a[mid] as number;
    if (v < x || (orEqual && v === x)) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** SINGLES requests to `target`, each after the idle gap; their outcomes and the probe's marks of them. */
async function afterIdle(
  path: Path,
  target: Target,
): Promise<{ outcomes: Outcome[]; requests: ProbedRequest[] }> {
  const pool = makePool(target.origin, 1);
  for (let i = 0; i < 3; i++) await once(pool, target, path.errors);
  await readProbe(path.proc.pid); // the warm-up's marks
  const outcomes: Outcome[] = [];
  for (let i = 0; i < SINGLES; i++) {
    // The idle gap is the workload here, not a wait for something to happen.
    await sleep(IDLE_MS);
    outcomes.push(await once(pool, target, path.errors));
  }
  await pool.close();
  return { outcomes, requests: (await readProbe(path.proc.pid)).requests };
}

async function singles(path: Path): Promise<void> {
  const { outcomes, requests } = await afterIdle(path, path.target);
  path.idle.push(...splitStreams(outcomes, requests));
}

/** Single JSON answers after the idle gap: where a cooled request's time goes, end to end. */
async function jsonSingles(path: Path): Promise<void> {
  const { outcomes, requests } = await afterIdle(path, path.jsonTarget);
  for (const { outcome: o, sentAtMs, request: r } of paired(outcomes, requests)) {
    if (r.C === undefined || r.S === undefined || r.R === undefined || r.E === undefined || r.W === undefined)
      continue;
    path.answers.push({
      wait: us(r.Q - sentAtMs),
      start: us(r.C - r.Q),
      toWrite: us(r.S - r.C),
      answer: us(r.R - r.S),
      body: us(r.E - r.R),
      answerPath: us(r.W - r.E),
      toClient: us(sentAtMs + o.us / 1000 - r.W),
      total: Math.round(o.us),
    });
  }
}

async function main(): Promise<void> {
  const pinned = cpuCount() > PROXY_CPU && pinSelf(LOAD_CPU);
  const cpu = (n: number) => (pinned ? n : undefined);
  const mock = startNode(
    [...GENERATOR_FLAGS, join(ROOT, 'bench/bench-upstream.ts'), '--port', '0', '--frame-interval-ms', '5'],
    { cpu: cpu(LOAD_CPU), env: childEnv(), stdout: 'pipe' },
  );
  const mockUrl = `http://127.0.0.1:${(JSON.parse(await mock.ready) as { port: number }).port}`;
  const pt = startNode(
    [
      ...PROXY_NODE_FLAGS,
      '--import',
      PROBE,
      join(ROOT, 'bench/passthrough-proxy.mjs'),
      '--upstream',
      mockUrl,
    ],
    { cpu: cpu(PROXY_CPU), env: childEnv(), stdout: 'pipe' },
  );
  const ptUrl = `http://127.0.0.1:${(JSON.parse(await pt.ready) as { port: number }).port}`;
  const setup = prepareGateway(mockUrl);
  const gw = startGateway(setup, join(setup.dir, 'gateway.log'), ['--import', PROBE], cpu(PROXY_CPU));
  const gwUrl = await gw.ready;
  // The master key, as compare.sh sends (bench/compare-limited.sh is the limited key's run).
  const key = setup.masterKey;
  const paths: Path[] = [
    {
      name: 'pass-through',
      proc: pt,
      target: chatTarget('pt', ptUrl, 'sk-bench-upstream', streamBody, checkStream),
      jsonTarget: chatTarget('pt', ptUrl, 'sk-bench-upstream'),
    },
    {
      name: 'switchyard',
      proc: gw,
      target: chatTarget('sy', gwUrl, key, streamBody, checkStream),
      jsonTarget: chatTarget('sy', gwUrl, key),
    },
  ].map((p) => ({
    ...p,
    firstBytes: [],
    earliest: [],
    starts: [],
    relays: [],
    takenIn: [],
    firstWrite: [],
    firstAnswer: [],
    idle: [],
    steady: [],
    answers: [],
    errors: new Errors(),
  }));
  console.log(
    `bursts of ${K} streams, ${BURSTS} a round; ${SINGLES} single streams after ${IDLE_MS} ms idle a round; ` +
      `${ROUNDS} rounds; ${pinned ? 'pinned' : 'unpinned'}`,
  );
  for (let r = 0; r < ROUNDS; r++) {
    for (const path of paths) {
      await bursts(path);
      await singles(path);
      await jsonSingles(path);
      await steady(path);
    }
  }

  const row = (cells: (string | number)[]) => console.log(cells.map((c) => String(c).padStart(14)).join(''));
  const [a, b] = paths as [Path, Path];
  const table = (columns: string[], figures: (p: Path) => number[]) => {
    row(['', ...columns]);
    for (const p of paths) row([p.name, ...figures(p)]);
    const fa = figures(a);
    row(['added', ...figures(b).map((x, i) => x - (fa[i] as number))]);
  };
  console.log('in bursts');
  table(['start µs', 'relay µs', 'first byte µs', 'earliest µs'], (p) => [
    median(p.starts),
    median(p.relays),
    median(p.firstBytes),
    median(p.earliest),
  ]);
  console.log(
    'a whole burst, from its first request event: all its requests taken in, the first upstream request written, the first answer read',
  );
  table(['all in µs', '1st sent µs', '1st answer µs'], (p) => [
    median(p.takenIn),
    median(p.firstWrite),
    median(p.firstAnswer),
  ]);
  // Each stream's first byte split at the probe's marks: the medians of each leg.
  const of = (splits: Split[], key: keyof Split) =>
    splits.flatMap((x) => (x[key] === undefined ? [] : [x[key]]));
  const split = (splits: (p: Path) => Split[]) => {
    console.log(
      '  waiting to be read, start, to the upstream write, its answer until read, relay, on to the client; first byte',
    );
    table(['wait', 'start', 'to write', 'answer', 'relay', 'to client', 'first byte'], (p) =>
      (['wait', 'start', 'toWrite', 'answer', 'relay', 'toClient', 'firstByte'] as const).map((k) =>
        median(of(splits(p), k)),
      ),
    );
  };
  console.log(`single streams after ${IDLE_MS} ms idle, split (medians, µs):`);
  split((p) => p.idle);
  console.log(
    `${STEADY} streams a round as compare.sh's stream test sends them (${K} workers, each stream after its last), split (medians, µs):`,
  );
  split((p) => p.steady);
  console.log(
    "  the two waits with no other request's mark inside them (other streams' frames may still be), and how often",
  );
  table(['to write', 'answer'], (p) => [
    median(of(p.steady, 'toWriteAlone')),
    median(of(p.steady, 'answerAlone')),
  ]);
  for (const p of paths) {
    const n = p.steady.length;
    console.log(
      `  ${p.name}: alone in ${of(p.steady, 'toWriteAlone').length} and ${of(p.steady, 'answerAlone').length} of ${n} streams`,
    );
  }
  // Fastify's handler channel marks H; the model lane (src/server/lane) serves these streams
  // without Fastify, so there is no such mark to split at.
  const toHandler = [...of(b.idle, 'toHandler'), ...of(b.steady, 'toHandler')];
  console.log(
    toHandler.length === 0
      ? "  switchyard's start is not split at a route handler: the model lane served it, not Fastify"
      : `  switchyard's start to its route handler: ${median(of(b.idle, 'toHandler'))} µs after idle, ${median(of(b.steady, 'toHandler'))} µs in the steady load`,
  );
  console.log(`single JSON answers after ${IDLE_MS} ms idle, split (medians, µs):`);
  console.log(
    '  waiting to be read, start, to the upstream write, its answer until its headers are read, the rest of its body, the answer path, on to the client; all',
  );
  table(['wait', 'start', 'to write', 'answer', 'body', 'answer path', 'to client', 'all'], (p) =>
    (['wait', 'start', 'toWrite', 'answer', 'body', 'answerPath', 'toClient', 'total'] as const).map((k) =>
      median(p.answers.map((x) => x[k])),
    ),
  );
  for (const p of paths) console.log(`errors (${p.name}): ${p.errors.total}`);
  await Promise.all([gw.stop(), pt.stop(), mock.stop()]);
  rmSync(setup.dir, { recursive: true, force: true });
}

main().catch((error: unknown) => {
  console.error(error);
  killAll();
  process.exit(1);
});
