/**
 * A 100 MB batch input file through a gateway process (`switchyard start`,
 * built-in mock provider, SQLite, the SQL queue, workers in-process): upload
 * it with the official SDK, run the batch, download the output; the
 * gateway's RSS is sampled from /proc all along. Files are streamed in and
 * out and lines run a few at a time, so RSS should stay flat: the report
 * prints it before, at its peak while uploading, while running and while
 * downloading.
 *
 *   node bench/batch-file.ts [--mb 100]
 */
import { createReadStream, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import OpenAI from 'openai';
import { newMasterKey, spawnGateway, tempDir } from '../test/helpers/gateway.ts';

const mb = Number(process.argv[process.argv.indexOf('--mb') + 1] || 100);
const LINE_CHARS = 2_000;
const lines = Math.ceil((mb * 1024 * 1024) / LINE_CHARS);

function rssMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
  return kb / 1024;
}

async function main(): Promise<void> {
  const dir = tempDir('switchyard-batch-bench-');
  const path = join(dir, 'input.jsonl');
  const filler = 'x'.repeat(LINE_CHARS - 200);
  const chunks: string[] = [];
  for (let i = 0; i < lines; i++) {
    chunks.push(
      `${JSON.stringify({ custom_id: `r${i}`, method: 'POST', url: '/v1/embeddings', body: { model: 'mock', input: `${i} ${filler}` } })}\n`,
    );
  }
  writeFileSync(path, chunks.join(''));
  chunks.length = 0;
  const masterKey = newMasterKey();
  const gateway = await spawnGateway({
    masterKey,
    // Of the node flags `npm start` runs the gateway with (package.json), those NODE_OPTIONS allows.
    env: { NODE_OPTIONS: process.env['BENCH_NODE_OPTIONS'] ?? '--max-semi-space-size=4' },
    dataDir: dir,
    config: {
      jobs: { batches: { max_lines: lines + 10, max_file_bytes: 512 * 1024 * 1024 } },
      logging: { level: 'warn' },
    },
  });
  const pid = gateway.child.pid!;
  const peaks = { idle: rssMb(pid), upload: 0, run: 0, download: 0 };
  let phase: keyof typeof peaks = 'upload';
  const sampler = setInterval(() => {
    peaks[phase] = Math.max(peaks[phase], rssMb(pid));
  }, 100);
  try {
    const client = new OpenAI({
      baseURL: gateway.baseUrl,
      apiKey: masterKey,
      maxRetries: 0,
      timeout: 600_000,
    });
    let started = performance.now();
    const file = await client.files.create({ file: createReadStream(path), purpose: 'batch' });
    const uploadS = (performance.now() - started) / 1000;
    phase = 'run';
    started = performance.now();
    let batch = await client.batches.create({
      input_file_id: file.id,
      endpoint: '/v1/embeddings',
      completion_window: '24h',
    });
    while (!['completed', 'failed', 'cancelled', 'expired'].includes(batch.status)) {
      await new Promise((resolve) => setTimeout(resolve, 250));
      batch = await client.batches.retrieve(batch.id);
    }
    const runS = (performance.now() - started) / 1000;
    phase = 'download';
    started = performance.now();
    const response = await client.files.content(batch.output_file_id!);
    let outBytes = 0;
    for await (const piece of response.body as unknown as AsyncIterable<Uint8Array>) outBytes += piece.length;
    const downloadS = (performance.now() - started) / 1000;
    clearInterval(sampler);
    process.stdout.write(
      [
        `batch file: ${(file.bytes / 1048576).toFixed(1)} MB, ${lines} lines, status ${batch.status} (${JSON.stringify(batch.request_counts)})`,
        `  upload ${uploadS.toFixed(1)} s, run ${runS.toFixed(1)} s (${(lines / runS).toFixed(0)} lines/s), download ${(outBytes / 1048576).toFixed(1)} MB in ${downloadS.toFixed(1)} s`,
        `  gateway RSS: idle ${peaks.idle.toFixed(0)} MB, peak uploading ${peaks.upload.toFixed(0)} MB, running ${peaks.run.toFixed(0)} MB, downloading ${peaks.download.toFixed(0)} MB`,
      ].join('\n') + '\n',
    );
  } finally {
    clearInterval(sampler);
    gateway.kill('SIGTERM');
    await gateway.exited;
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
