/**
 * The log destination on a real pipe (a child process's standard output): a
 * reader that stops reading never blocks the writer, the backlog is bounded
 * and what was dropped is said in one line once the reader is back; a reader
 * that goes away (EPIPE) does not crash the writer.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { describe, it } from 'node:test';
import { StdoutDestination } from '../../src/observability/stdout-destination.ts';

const MODULE = JSON.stringify(join(import.meta.dirname, '../../src/observability/stdout-destination.ts'));
const BATCHES = 256;
const LINES_PER_BATCH = 16;
const LINE = 'x'.repeat(1000);

/** Writes BATCHES batches of LINES_PER_BATCH numbered lines, then says so on stderr. */
const writer = (then: string) => `
  const { StdoutDestination } = await import(${MODULE});
  const out = new StdoutDestination({ maxQueuedBytes: 256 * 1024 });
  let n = 0;
  for (let b = 0; b < ${BATCHES}; b++) {
    let batch = '';
    for (let i = 0; i < ${LINES_PER_BATCH}; i++) batch += JSON.stringify({ n: n++, pad: ${JSON.stringify(LINE)} }) + '\\n';
    out.write(batch);
  }
  process.stderr.write('written\\n');
  ${then}
`;

function run(script: string) {
  return spawn(process.execPath, ['--input-type=module', '-e', script], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

/** Resolves with the child's stderr so far once it includes `text` (the stream is read on, not closed). */
function untilStderr(child: ReturnType<typeof run>, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let err = '';
    const onData = (chunk: Buffer): void => {
      err += String(chunk);
      if (!err.includes(text)) return;
      child.stderr.off('data', onData);
      child.stderr.off('end', onEnd);
      resolve(err);
    };
    const onEnd = (): void => reject(new Error(`child ended without saying ${text}: ${err}`));
    child.stderr.on('data', onData);
    child.stderr.once('end', onEnd);
  });
}

describe('StdoutDestination', () => {
  it('a stalled reader blocks nothing: the backlog is bounded, the loss reported when it reads again', async () => {
    // After the writes, the child waits for its backlog to drain (the parent reading again),
    // then writes a last batch, which first reports the lines dropped.
    const child = run(
      writer(`
      process.stdout.once('drain', () => out.write(JSON.stringify({ last: true }) + '\\n'));
    `),
    );
    child.stdout.pause();
    // The child got through every write while nobody read its output: nothing blocked it.
    await untilStderr(child, 'written');
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      out += chunk;
    });
    child.stdout.resume();
    const [code] = await once(child, 'close');
    assert.equal(code, 0);
    const lines = out
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { n?: number; droppedLines?: number; last?: boolean; msg?: string });
    const numbered = lines.filter((l) => l.n !== undefined).map((l) => l.n!);
    const report = lines.filter((l) => l.droppedLines !== undefined);
    assert.equal(report.length, 1, 'one line says what was dropped');
    assert.match(report[0]!.msg!, /dropped/);
    assert.equal(
      numbered.length + report[0]!.droppedLines!,
      BATCHES * LINES_PER_BATCH,
      'every line written or counted',
    );
    assert.ok(report[0]!.droppedLines! > 0 && numbered.length > 0);
    assert.deepEqual(
      numbered,
      [...numbered].sort((a, b) => a - b),
      'what was kept is in order',
    );
    assert.deepEqual(
      numbered.slice(0, 10),
      [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
      'kept from the start, whole batches',
    );
    assert.equal(numbered.length % LINES_PER_BATCH, 0);
    assert.deepEqual(lines.at(-1), { last: true }, 'the report comes before the next batch');
    assert.equal(lines.at(-2), report[0]);
  });

  it('a flush behind a backed-up pipe calls back once the reader has taken everything', async () => {
    // The pipe is filled until a small write has to wait in the process (below the
    // high-water mark, so no 'drain' will come); the flush must still see it leave.
    const child = run(`
      const { StdoutDestination } = await import(${MODULE});
      const out = new StdoutDestination({ flushWaitMs: 600_000 });
      const line = 'y'.repeat(1023) + '\\n';
      for (let i = 0; i < 100_000 && process.stdout.writableLength === 0; i++) out.write(line);
      const pending = process.stdout.writableLength;
      process.stderr.write('pending ' + pending + '\\n');
      out.flush(() => {
        process.stderr.write('flushed ' + process.stdout.writableLength + '\\n');
        process.exit(0);
      });
    `);
    child.stdout.pause();
    const said = await untilStderr(child, 'pending');
    const pending = Number(/pending (\d+)/.exec(said)![1]);
    assert.ok(pending > 0 && pending < 16 * 1024, `the write waiting in the process is small: ${pending}`);
    child.stdout.resume();
    // A paused stream still reads into its buffer up to its high-water mark, so the write can
    // leave before the resume: 'flushed' may come in the very chunk that said 'pending'.
    const err = said.includes('flushed') ? said : await untilStderr(child, 'flushed');
    assert.match(err, /flushed 0\n/);
    const [code] = await once(child, 'close');
    assert.equal(code, 0);
  });

  it('many destinations on one stream watch it with one error listener', () => {
    const stream = new PassThrough();
    for (let i = 0; i < 20; i++) new StdoutDestination({ stream });
    assert.equal(stream.listenerCount('error'), 1);
  });

  it('a reader that goes away (EPIPE) does not crash the writer', async () => {
    const child = run(
      writer(`process.stdout.once('error', () => setImmediate(() => {
        out.write('after the reader left\\n');
        process.stderr.write('still here\\n');
      }));`),
    );
    child.stdout.destroy();
    const err = await untilStderr(child, 'still here');
    const [code] = await once(child, 'close');
    assert.equal(code, 0, err);
  });
});
