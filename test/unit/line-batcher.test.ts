/**
 * The log stream that hands lines to pino's destination in ~16 KB strings:
 * order kept, nothing held past the flush interval, flush and exit hand over
 * what is pending (a line logged just before process.exit() is not lost).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it, mock } from 'node:test';
import { BATCH_CHARS, LineBatcher, type LineDestination } from '../../src/observability/line-batcher.ts';

function recorder(): LineDestination & { writes: string[]; flushes: number } {
  const target = {
    writes: [] as string[],
    flushes: 0,
    write(text: string) {
      target.writes.push(text);
      return true;
    },
    flush(callback: (error?: Error) => void) {
      target.flushes++;
      callback();
    },
  };
  return target;
}

describe('LineBatcher', () => {
  beforeEach(() => mock.timers.enable({ apis: ['setTimeout'] }));
  afterEach(() => mock.timers.reset());

  it('hands pending lines over as one string, in order, once they hold a batch', () => {
    const target = recorder();
    const stream = new LineBatcher(target, 500);
    const line = `${'x'.repeat(99)}\n`;
    const perBatch = BATCH_CHARS / line.length;
    for (let i = 0; i < Math.ceil(perBatch) - 1; i++) stream.write(line);
    assert.equal(target.writes.length, 0, 'nothing before a batch is full');
    stream.write(line);
    assert.equal(target.writes.length, 1);
    assert.equal(target.writes[0], line.repeat(Math.ceil(perBatch)));
    const many = Array.from({ length: 1000 }, (_, i) => `${i}${'y'.repeat(90)}\n`);
    for (const l of many) stream.write(l);
    stream.flushSync();
    assert.equal(target.writes.slice(1).join(''), many.join(''), 'order kept across batches');
    assert.ok(
      target.writes.slice(1, -1).every((w) => w.length >= BATCH_CHARS && w.length < BATCH_CHARS + 100),
    );
  });

  it('hands a partial batch over within the flush interval, and waits for lines before the next', () => {
    const target = recorder();
    const stream = new LineBatcher(target, 500);
    stream.write('a\n');
    mock.timers.tick(300);
    stream.write('b\n');
    mock.timers.tick(199);
    assert.deepEqual(target.writes, []);
    mock.timers.tick(1);
    assert.deepEqual(target.writes, ['a\nb\n']);
    mock.timers.tick(5_000);
    assert.deepEqual(target.writes, ['a\nb\n'], 'no empty writes');
    stream.write('c\n');
    mock.timers.tick(500);
    assert.deepEqual(target.writes, ['a\nb\n', 'c\n']);
  });

  it('flush hands over the pending lines before flushing the destination', async () => {
    const target = recorder();
    const stream = new LineBatcher(target, 500);
    stream.write('x\n');
    await new Promise<void>((resolve, reject) =>
      stream.flush((error) => (error ? reject(error) : resolve())),
    );
    assert.deepEqual(target.writes, ['x\n']);
    assert.equal(target.flushes, 1);
  });

  it("a line logged just before process.exit() reaches stdout (the gateway's logger)", () => {
    const loggerModule = join(import.meta.dirname, '../../src/observability/logger.ts');
    const script = `
      const { createLogger } = await import(${JSON.stringify(loggerModule)});
      const logger = createLogger({ level: 'info' });
      for (let i = 0; i < 3; i++) logger.info({ i }, 'before exit');
      process.exit(0);
    `;
    const child = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
    assert.equal(child.status, 0, child.stderr);
    const lines = child.stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { i: number; msg: string });
    assert.deepEqual(
      lines.map((l) => [l.i, l.msg]),
      [
        [0, 'before exit'],
        [1, 'before exit'],
        [2, 'before exit'],
      ],
    );
  });
});
