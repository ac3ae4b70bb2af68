/**
 * The Batcher (src/util/batcher.ts) and the EmbeddingBatcher over it. Time is
 * a manual timer the tests fire, and each batch's `run` answers when the test
 * says: nothing here sleeps or depends on how fast the machine is.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Batcher, type BatcherOptions } from '../../src/util/batcher.ts';
import { EmbeddingBatcher } from '../../src/util/embedding-batcher.ts';
import { ManualTimer } from '../helpers/manual-timer.ts';

interface Call<I, O> {
  items: I[];
  signal: AbortSignal;
  answer(results: ReadonlyArray<O | Error>): void;
  fail(error: unknown): void;
}

/** A batcher whose batches wait for the test to answer them, each call recorded. */
function harness<I = number, O = number>(options: Omit<BatcherOptions<I, O>, 'run' | 'timer'> = {}) {
  const timer = new ManualTimer();
  const calls: Call<I, O>[] = [];
  const batcher = new Batcher<I, O>({
    ...options,
    timer,
    run: (items, signal) => {
      const { promise, resolve, reject } = Promise.withResolvers<ReadonlyArray<O | Error>>();
      calls.push({ items, signal, answer: resolve, fail: reject });
      return promise;
    },
  });
  return { batcher, timer, calls };
}

/** Lets promise callbacks that are already due run (no timers involved). */
const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

/** Whether `promise` has settled yet, without waiting for it. */
async function state(promise: Promise<unknown>): Promise<'pending' | 'resolved' | 'rejected'> {
  let result: 'pending' | 'resolved' | 'rejected' = 'pending';
  promise.then(
    () => {
      result = 'resolved';
    },
    () => {
      result = 'rejected';
    },
  );
  await settle();
  return result;
}

describe('Batcher', () => {
  test('a full batch leaves at once; the rest waits for its time; results go back by position', async () => {
    const { batcher, timer, calls } = harness({ maxBatch: 3, maxWaitMs: 10 });
    const results = [1, 2, 3, 4, 5, 6, 7].map((n) => batcher.submit(n));
    assert.deepEqual(
      calls.map((c) => c.items),
      [
        [1, 2, 3],
        [4, 5, 6],
      ],
      'two full batches left without any timer firing',
    );
    assert.equal(batcher.pending, 1);
    assert.deepEqual(
      [...timer.scheduled.values()].map((t) => t.ms),
      [10],
      'only the open batch still has a timer',
    );
    for (const call of calls) call.answer(call.items.map((n) => n * 10));
    assert.deepEqual(await Promise.all(results.slice(0, 6)), [10, 20, 30, 40, 50, 60]);
    assert.equal(await state(results[6]!), 'pending');

    timer.fireAll();
    assert.deepEqual(calls[2]?.items, [7]);
    calls[2]!.answer([70]);
    assert.equal(await results[6], 70);
    assert.equal(timer.scheduled.size, 0);
  });

  test('a batch that is not full leaves when its wait after the first item is over', async () => {
    const { batcher, timer, calls } = harness({ maxBatch: 100, maxWaitMs: 25 });
    const a = batcher.submit(1);
    const b = batcher.submit(2);
    assert.equal(calls.length, 0);
    assert.equal(timer.scheduled.size, 1, 'one timer per batch, set by its first item');
    timer.fireAll();
    assert.deepEqual(calls[0]?.items, [1, 2]);
    const c = batcher.submit(3);
    assert.equal(timer.scheduled.size, 1, 'the next item opens a new batch with its own timer');
    calls[0]!.answer(['one', 'two'] as unknown as number[]);
    assert.deepEqual(await Promise.all([a, b]), ['one', 'two']);
    timer.fireAll();
    calls[1]!.answer([3]);
    assert.equal(await c, 3);
  });

  test('run failing fails every caller of its batch, and only them', async () => {
    const { batcher, timer, calls } = harness({ maxBatch: 2 });
    const first = [batcher.submit(1), batcher.submit(2)];
    const second = [batcher.submit(3)];
    const boom = new Error('upstream down');
    calls[0]!.fail(boom);
    for (const p of first) await assert.rejects(p, (e) => e === boom);
    timer.fireAll();
    calls[1]!.answer([30]);
    assert.equal(await second[0], 30);
  });

  test('run throwing synchronously fails the batch like a rejection', async () => {
    const timer = new ManualTimer();
    const batcher = new Batcher<number, number>({
      timer,
      maxBatch: 2,
      run: () => {
        throw new Error('sync');
      },
    });
    const results = [batcher.submit(1), batcher.submit(2)];
    for (const p of results) await assert.rejects(p, /sync/);
  });

  test('a result count that does not match the batch fails every caller', async () => {
    const { batcher, calls } = harness({ maxBatch: 3 });
    const results = [batcher.submit(1), batcher.submit(2), batcher.submit(3)];
    calls[0]!.answer([10, 20]);
    for (const p of results) await assert.rejects(p, /run answered 2 results for 3 items/);
  });

  test('an Error in one position fails that caller alone', async () => {
    const { batcher, calls } = harness({ maxBatch: 3 });
    const results = [batcher.submit(1), batcher.submit(2), batcher.submit(3)];
    const refused = new Error('input 2 refused');
    calls[0]!.answer([10, refused, 30]);
    assert.equal(await results[0], 10);
    await assert.rejects(results[1]!, (e) => e === refused);
    assert.equal(await results[2], 30);
  });

  test('an aborted caller is rejected at once and taken out of a batch that has not left', async () => {
    const { batcher, timer, calls } = harness({ maxBatch: 3 });
    const gone = new AbortController();
    const a = batcher.submit(1);
    const b = batcher.submit(2, gone.signal);
    const reason = new Error('client gone');
    gone.abort(reason);
    await assert.rejects(b, (e) => e === reason);
    assert.equal(batcher.pending, 1);
    // The freed place is taken by the next item: the batch is full again only at 3 live items.
    const c = batcher.submit(3);
    assert.equal(calls.length, 0);
    const d = batcher.submit(4);
    assert.deepEqual(calls[0]?.items, [1, 3, 4]);
    calls[0]!.answer([10, 30, 40]);
    assert.deepEqual(await Promise.all([a, c, d]), [10, 30, 40]);
    assert.equal(timer.scheduled.size, 0);
  });

  test('a signal already aborted is refused without joining a batch', async () => {
    const { batcher, timer } = harness();
    await assert.rejects(batcher.submit(1, AbortSignal.abort(new Error('already'))), /already/);
    assert.equal(batcher.pending, 0);
    assert.equal(timer.scheduled.size, 0);
  });

  test('a batch whose callers have all gone before it left is never sent', async () => {
    const { batcher, timer, calls } = harness();
    const gone = new AbortController();
    const results = [batcher.submit(1, gone.signal), batcher.submit(2, gone.signal)];
    gone.abort();
    for (const p of results) await assert.rejects(p, { name: 'AbortError' });
    assert.equal(timer.scheduled.size, 0, 'its timer is cleared');
    timer.fireAll();
    assert.equal(calls.length, 0);
    await batcher.close();
  });

  test('after a batch left: a caller that goes is rejected, and run is told only when all have gone', async () => {
    const { batcher, calls } = harness({ maxBatch: 2 });
    const one = new AbortController();
    const two = new AbortController();
    const a = batcher.submit(1, one.signal);
    const b = batcher.submit(2, two.signal);
    const { signal } = calls[0]!;
    one.abort();
    await assert.rejects(a, { name: 'AbortError' });
    assert.equal(signal.aborted, false, 'the other caller still wants its answer');
    two.abort();
    await assert.rejects(b, { name: 'AbortError' });
    assert.equal(signal.aborted, true);
    calls[0]!.answer([10, 20]);
    await batcher.close();
  });

  test('a caller that stays gets its answer when another of its batch has gone', async () => {
    const { batcher, calls } = harness({ maxBatch: 2 });
    const gone = new AbortController();
    const a = batcher.submit(1, gone.signal);
    const b = batcher.submit(2);
    gone.abort();
    await assert.rejects(a, { name: 'AbortError' });
    assert.equal(calls[0]!.signal.aborted, false, 'a caller without a signal never goes');
    calls[0]!.answer([10, 20]);
    assert.equal(await b, 20);
  });

  test('at most maxInFlight batches run; the waiting open batch keeps filling up to maxBatch', async () => {
    const { batcher, timer, calls } = harness({ maxBatch: 3, maxInFlight: 1 });
    const results = [1, 2, 3].map((n) => batcher.submit(n));
    assert.equal(calls.length, 1);
    results.push(batcher.submit(4));
    timer.fireAll(); // the open batch is due, but the only slot is taken
    assert.equal(calls.length, 1);
    assert.equal(batcher.inFlight, 1);
    results.push(batcher.submit(5), batcher.submit(6), batcher.submit(7));
    assert.equal(batcher.pending, 4, '[4, 5, 6] waits full, [7] is open');
    calls[0]!.answer([1, 2, 3]);
    await Promise.all(results.slice(0, 3));
    assert.deepEqual(calls[1]?.items, [4, 5, 6], 'the oldest batch goes first, never above maxBatch');
    assert.equal(calls.length, 2);
    calls[1]!.answer([4, 5, 6]);
    await Promise.all(results.slice(3, 6));
    assert.equal(calls.length, 2, '[7] waits for its own time');
    timer.fireAll();
    assert.deepEqual(calls[2]?.items, [7]);
    calls[2]!.answer([7]);
    assert.deepEqual(await Promise.all(results), [1, 2, 3, 4, 5, 6, 7]);
    assert.ok(calls.every((c) => c.items.length <= 3));
  });

  test('close() sends what waits at once, resolves when all is done, and refuses later items', async () => {
    const { batcher, timer, calls } = harness({ maxBatch: 10, maxInFlight: 1 });
    const results = [batcher.submit(1), batcher.submit(2)];
    let closed = false;
    const closing = batcher.close().then(() => {
      closed = true;
    });
    assert.deepEqual(calls[0]?.items, [1, 2], 'sent without waiting for its timer');
    assert.equal(timer.scheduled.size, 0);
    await assert.rejects(batcher.submit(3), /closed/);
    await settle();
    assert.equal(closed, false, 'not before the batch has finished');
    calls[0]!.answer([10, 20]);
    await closing;
    assert.deepEqual(await Promise.all(results), [10, 20]);
  });

  test('flush() sends what waits at once; later items batch as usual', async () => {
    const { batcher, timer, calls } = harness({ maxBatch: 10 });
    const first = [batcher.submit(1), batcher.submit(2)];
    batcher.flush();
    assert.deepEqual(calls[0]?.items, [1, 2]);
    const later = batcher.submit(3);
    assert.equal(calls.length, 1, 'a later item waits for its batch');
    timer.fireAll();
    assert.deepEqual(calls[1]?.items, [3]);
    calls[0]!.answer([10, 20]);
    calls[1]!.answer([30]);
    assert.deepEqual(await Promise.all([...first, later]), [10, 20, 30]);
  });

  test('options are checked', () => {
    const run = async () => [];
    assert.throws(() => new Batcher({ run, maxBatch: 0 }), RangeError);
    assert.throws(() => new Batcher({ run, maxInFlight: 1.5 }), RangeError);
    assert.throws(() => new Batcher({ run, maxWaitMs: -1 }), RangeError);
  });
});

describe('EmbeddingBatcher', () => {
  test('embed() and embedMany() share calls of up to maxBatch texts, each vector to its text', async () => {
    const timer = new ManualTimer();
    const calls: string[][] = [];
    const embedder = new EmbeddingBatcher({
      maxBatch: 100,
      timer,
      embedMany: async (texts) => {
        calls.push(texts);
        return texts.map((t) => (t === 'bad' ? new Error('refused') : [t.length, t.charCodeAt(0)]));
      },
    });
    const single = embedder.embed('hello');
    const many = embedder.embedMany(Array.from({ length: 150 }, (_, i) => `text ${i}`));
    const refused = embedder.embed('bad');
    assert.equal(calls.length, 1, 'the first 100 texts left together');
    assert.equal(calls[0]?.length, 100);
    timer.fireAll();
    assert.deepEqual(
      calls.map((c) => c.length),
      [100, 52],
    );
    assert.deepEqual(await single, [5, 104]);
    const vectors = await many;
    assert.equal(vectors.length, 150);
    vectors.forEach((v, i) => {
      assert.deepEqual(v, [`text ${i}`.length, 116]);
    });
    await assert.rejects(refused, /refused/);
    await embedder.close();
  });
});
