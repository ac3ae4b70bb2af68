/**
 * The log stream that hands a turn's lines to pino's destination as one
 * string: order kept, nothing held past the turn, flush and exit hand over
 * what is pending (a line logged just before process.exit() is not lost).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { setImmediate as endOfTurn } from 'node:timers/promises';
import { type LineDestination, TurnBatchedStream } from '../../src/observability/turn-batched-stream.ts';

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

describe('TurnBatchedStream', () => {
  it("hands a turn's lines over as one string, in order, at the end of the turn", async () => {
    const target = recorder();
    const stream = new TurnBatchedStream(target);
    stream.write('a\n');
    stream.write('b\n');
    stream.write('c\n');
    assert.deepEqual(target.writes, [], 'nothing before the turn ends');
    await endOfTurn();
    assert.deepEqual(target.writes, ['a\nb\nc\n']);
    stream.write('d\n');
    await endOfTurn();
    assert.deepEqual(target.writes, ['a\nb\nc\n', 'd\n']);
  });

  it('a turn that writes many lines hands them over every 256, without waiting', () => {
    const target = recorder();
    const stream = new TurnBatchedStream(target);
    for (let i = 0; i < 600; i++) stream.write(`${i}\n`);
    assert.equal(target.writes.length, 2);
    assert.equal(target.writes.join('').split('\n').length - 1, 512);
    stream.flushSync();
    assert.equal(target.writes.join(''), Array.from({ length: 600 }, (_, i) => `${i}\n`).join(''));
  });

  it('flush hands over the pending lines before flushing the destination', async () => {
    const target = recorder();
    const stream = new TurnBatchedStream(target);
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
