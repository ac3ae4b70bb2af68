/**
 * When an answer's ledger rows reach the spool file: a quiet spool writes them
 * as soon as the answer waits (no hop to the turn's end), a busy one writes
 * every row of the turn in one write at its end (group commit), and either way
 * `whenDurable` calls back only once the rows are in the file.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { LedgerSpool, QUIET_WRITE_MS } from '../../src/ledger/ledger-spool.ts';

const logger = { warn() {}, error() {} };
const endOfTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('LedgerSpool write timing', () => {
  let dir: string;
  let clock: number;
  let spool: LedgerSpool;
  const spooled = () =>
    readdirSync(dir)
      .map((name) => readFileSync(join(dir, name), 'utf8'))
      .join('')
      .split('\n')
      .filter((line) => line !== '');

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'spool-'));
    clock = 1_000;
    spool = new LedgerSpool(dir, logger, () => clock);
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('writes a quiet spool’s rows when the answer waits, and calls back at once', () => {
    spool.append('{"row":1}');
    assert.deepEqual(spooled(), [], 'appended rows wait for a reason to be written');
    let durable = false;
    spool.whenDurable(() => {
      durable = true;
    });
    assert.equal(durable, true, 'no wait for the end of the turn');
    assert.deepEqual(spooled(), ['{"row":1}']);
  });

  it('group-commits while busy: answers after a recent write wait for the turn’s one write', async () => {
    spool.append('{"row":1}');
    spool.whenDurable(() => {});
    clock += QUIET_WRITE_MS / 2;
    spool.append('{"row":2}');
    spool.append('{"row":3}');
    const calls: string[] = [];
    spool.whenDurable(() => calls.push(`a:${spooled().length}`));
    spool.whenDurable(() => calls.push(`b:${spooled().length}`));
    assert.deepEqual(calls, [], 'the spool wrote within the quiet time: the answers wait');
    assert.deepEqual(spooled(), ['{"row":1}']);
    await endOfTurn();
    assert.deepEqual(calls, ['a:3', 'b:3'], 'each called back with its rows in the file');
  });

  it('writes at once again after the quiet time, taking earlier waiters along', () => {
    spool.append('{"row":1}');
    spool.whenDurable(() => {});
    clock += QUIET_WRITE_MS / 2;
    spool.append('{"row":2}');
    const calls: string[] = [];
    spool.whenDurable(() => calls.push('waited'));
    clock += QUIET_WRITE_MS;
    spool.append('{"row":3}');
    spool.whenDurable(() => calls.push('quiet'));
    assert.deepEqual(calls, ['waited', 'quiet'], 'one write serves both, in order');
    assert.deepEqual(spooled(), ['{"row":1}', '{"row":2}', '{"row":3}']);
  });

  it('calls back at once when nothing is waiting to be written, without a write', () => {
    spool.append('{"row":1}');
    spool.flush();
    clock += QUIET_WRITE_MS / 2;
    let durable = false;
    spool.whenDurable(() => {
      durable = true;
    });
    assert.equal(durable, true);
    assert.deepEqual(spooled(), ['{"row":1}']);
  });
});
