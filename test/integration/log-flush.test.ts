/**
 * A running gateway's own log (stdout, through its batched destination): a
 * line is written within the flush interval even when it is the only one.
 * Lines are collected into ~16 KB writes (line-batcher.ts); without its
 * timer a quiet gateway's lines waited for that, so its log showed nothing
 * while it ran and a kill -9 lost them.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { eventually } from '../conformance/harness.ts';
import { chatStatus, spawnGateway } from '../helpers/gateway.ts';

test("a quiet gateway's request line is on its stdout while it runs", async () => {
  const gw = await spawnGateway({ env: { LOG_LEVEL: 'info' } });
  try {
    assert.equal(await chatStatus(gw, gw.masterKey), 200);
    await eventually(
      'the request line on stdout',
      () => readFileSync(gw.stdoutFile, 'utf8').includes('"msg":"request"'),
      { timeoutMs: 15_000, intervalMs: 20 },
    );
    assert.equal(gw.child.exitCode, null, 'written by the running process, not at its exit');
  } finally {
    gw.kill();
    await gw.exited;
  }
});
