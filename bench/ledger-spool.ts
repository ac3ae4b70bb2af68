/**
 * What the ledger's kill -9 spool costs a request: CPU microseconds per
 * `UsageLedger.record()` plus its share of the spool write, with the spool
 * and without it (an in-memory queue push), measured in one process, the
 * median of several runs. The spool writes each event-loop turn's rows in one
 * write at the turn's end, so its cost depends on how many rows a turn has:
 * measured with 1 row a turn (a quiet gateway: one write per row) and 16
 * (a busy one). Writes to the database are kept out of the numbers (the
 * flush timer is an hour away).
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
  usPerRecordWithoutSpool: number;
  /** One row a turn (a quiet gateway). */
  usPerRecordWithSpool: number;
  /** 16 rows a turn (a busy gateway: one write serves them all). */
  usPerRecordWithSpoolBusy: number;
  /** What the spool adds to each upstream attempt, quiet and busy. */
  usSpoolCost: number;
  usSpoolCostBusy: number;
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

/** CPU µs per row, recording `perTurn` rows a turn and waiting for each turn's spool write. */
async function usPerRecord(spool: boolean, perTurn: number): Promise<number> {
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
      const started = process.cpuUsage();
      for (let i = 0; i < rows.length; i += perTurn) {
        for (let j = i; j < Math.min(rows.length, i + perTurn); j++) ledger.record(rows[j]!);
        await new Promise<void>((resolve) => ledger.whenDurable(resolve));
      }
      const cpu = process.cpuUsage(started);
      if (run > 0) samples.push((cpu.user + cpu.system) / ROWS); // the first run warms up
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
  const round2 = (n: number) => Math.round(n * 100) / 100;
  const without = await usPerRecord(false, 1);
  const quiet = await usPerRecord(true, 1);
  const busy = await usPerRecord(true, 16);
  return {
    usPerRecordWithoutSpool: round2(without),
    usPerRecordWithSpool: round2(quiet),
    usPerRecordWithSpoolBusy: round2(busy),
    usSpoolCost: round2(quiet - without),
    usSpoolCostBusy: round2(busy - without),
  };
}

if (import.meta.main) {
  const result = await benchLedgerSpool();
  if (process.argv.includes('--json')) process.stdout.write(`${JSON.stringify(result)}\n`);
  else console.log(result);
}
