/**
 * What the ledger's kill -9 spool costs a request: microseconds per
 * `UsageLedger.record()` with the spool (one JSON line, one synchronous
 * write to a local file) and without it (an in-memory queue push), measured
 * in one process, the median of several runs. Writes to the database are
 * kept out of the numbers (the flush timer is an hour away).
 *
 * Run alone: node bench/ledger-spool.ts [--json]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type LedgerRow, UsageLedger } from '../src/ledger/usage-ledger.ts';
import { migrate } from '../src/store/migrations.ts';
import { openDatabase } from '../src/store/sql.ts';

export interface SpoolBench {
  usPerRecordWithSpool: number;
  usPerRecordWithoutSpool: number;
  /** The difference: what the spool adds to each upstream attempt. */
  usSpoolCost: number;
}

const ROWS = 20_000;
const RUNS = 5;

function row(i: number): LedgerRow {
  return {
    requestId: `0b8f3c2e-5d1a-4f7b-9c3e-${String(i).padStart(12, '0')}`,
    attempt: 1,
    clientRequestId: null,
    keyId: 'key_4f1c9e2a7b3d5e6f8a9b0c1d',
    route: '/v1/chat/completions',
    modelRequested: 'gpt-4o-mini',
    provider: 'openai',
    modelUsed: 'gpt-4o-mini',
    status: 'ok',
    httpStatus: 200,
    errorCode: null,
    stream: false,
    promptTokens: 18,
    completionTokens: 42,
    cachedTokens: 0,
    reasoningTokens: 0,
    usageSource: 'upstream',
    latencyMs: 1.734,
    ttftMs: null,
    cacheStatus: 'miss',
    costMicros: null,
    createdAt: 1_764_500_000_000 + i,
  };
}

async function usPerRecord(spool: boolean): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-spool-bench-'));
  const database = await openDatabase({ dataDir: dir });
  await migrate(database);
  const rows = Array.from({ length: ROWS }, (_, i) => row(i));
  const samples: number[] = [];
  try {
    for (let run = 0; run < RUNS + 1; run++) {
      const ledger = new UsageLedger(database, {
        flushIntervalMs: 3_600_000,
        maxBatch: ROWS * 2,
        maxQueued: ROWS * 2,
        ...(spool ? { spoolDir: join(dir, `spool-${run}`) } : {}),
      });
      const started = performance.now();
      for (const r of rows) ledger.record(r);
      const us = ((performance.now() - started) * 1000) / ROWS;
      if (run > 0) samples.push(us); // the first run warms up
      await ledger.close();
    }
  } finally {
    await database.close();
    rmSync(dir, { recursive: true, force: true });
  }
  samples.sort((a, b) => a - b);
  return samples[Math.floor(samples.length / 2)]!;
}

export async function benchLedgerSpool(): Promise<SpoolBench> {
  const without = await usPerRecord(false);
  const withSpool = await usPerRecord(true);
  const round2 = (n: number) => Math.round(n * 100) / 100;
  return {
    usPerRecordWithSpool: round2(withSpool),
    usPerRecordWithoutSpool: round2(without),
    usSpoolCost: round2(withSpool - without),
  };
}

if (import.meta.main) {
  const result = await benchLedgerSpool();
  if (process.argv.includes('--json')) process.stdout.write(`${JSON.stringify(result)}\n`);
  else console.log(result);
}
