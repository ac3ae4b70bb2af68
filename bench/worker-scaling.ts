/**
 * Worker scaling: how fast N `switchyard worker` processes drain one queue.
 * An API node that runs no workers (`jobs.workers: false`) queues JOBS chat
 * jobs (`POST /v1/jobs`) into the shared SQL queue (one SQLite file, the
 * default store); then N worker processes start on the same data dir and
 * config and run them against the gateway's mock provider answering after
 * UPSTREAM_LATENCY_MS (a stand-in for a real provider's latency). The drain
 * time is read from the queue itself: the first job's start to the last
 * job's finish, so process start-up is not counted.
 *
 * With latency-bound jobs (8 at once per worker, the `fast` queue's default)
 * a second worker doubles the jobs in flight; what it cannot double on this
 * two-core machine is the CPU the workers, the API node and SQLite share.
 *
 * Run alone: node bench/worker-scaling.ts [--json] [--workers 1,2,3] [--jobs 2000]
 */
import { DatabaseSync } from 'node:sqlite';
import { newMasterKey, type SpawnedGateway, spawnGateway, tempDir } from '../test/helpers/gateway.ts';

const arg = (name: string): string | undefined => {
  const i = process.argv.indexOf(name);
  return i < 0 ? undefined : process.argv[i + 1];
};
const JOBS = Number(arg('--jobs') ?? 2_000);
const WORKERS = (arg('--workers') ?? '1,2,3').split(',').map(Number);
const UPSTREAM_LATENCY_MS = Number(arg('--latency-ms') ?? 50);
const ENQUEUE_IN_FLIGHT = 50;

export interface WorkerScalingCell {
  workers: number;
  jobs: number;
  /** First job started to last job finished (from the queue's own timestamps). */
  drainSeconds: number;
  jobsPerSecond: number;
  /** jobsPerSecond over the one-worker run's. */
  speedup: number;
}

async function post(url: string, key: string, path: string, body: unknown): Promise<Record<string, unknown>> {
  const res = await fetch(`${url}${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const json = (await res.json()) as Record<string, unknown>;
  if (res.status >= 300) throw new Error(`${path}: ${res.status} ${JSON.stringify(json)}`);
  return json;
}

async function drainWith(workers: number): Promise<{ drainSeconds: number }> {
  const dataDir = tempDir('switchyard-bench-workers-');
  const masterKey = newMasterKey();
  const config = {
    providers: { upstream: { type: 'mock', latency_ms: UPSTREAM_LATENCY_MS } },
    models: { mock: { targets: [{ provider: 'upstream', model: 'mock-1' }] } },
    // Workers find the API node's jobs by polling the queue: 50 ms keeps that out of the number.
    jobs: { workers: false, poll_ms: 50 },
    logging: { level: 'warn' },
  };
  const processes: SpawnedGateway[] = [];
  try {
    const apiNode = await spawnGateway({ config, dataDir, masterKey });
    processes.push(apiNode);
    const key = (await post(apiNode.url, masterKey, '/admin/keys', { name: 'bench-jobs' }))['key'] as string;
    let next = 0;
    await Promise.all(
      Array.from({ length: ENQUEUE_IN_FLIGHT }, async () => {
        while (next < JOBS) {
          const n = next++;
          await post(apiNode.url, key, '/v1/jobs', {
            request: { model: 'mock', messages: [{ role: 'user', content: `job ${n}` }] },
          });
        }
      }),
    );
    const workerProcesses = await Promise.all(
      Array.from({ length: workers }, () => spawnGateway({ command: 'worker', config, dataDir, masterKey })),
    );
    processes.push(...workerProcesses);
    const db = new DatabaseSync(`${dataDir}/switchyard.db`, { readOnly: true });
    try {
      const count = db.prepare("select count(*) as n from jobs where status in ('completed', 'failed')");
      while (Number((count.get() as { n: number }).n) < JOBS) {
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      const failed = db.prepare("select count(*) as n from jobs where status = 'failed'").get() as {
        n: number;
      };
      if (Number(failed.n) > 0) throw new Error(`${failed.n} jobs failed`);
      const span = db
        .prepare('select min(started_at) as first, max(finished_at) as last from jobs')
        .get() as {
        first: number;
        last: number;
      };
      return { drainSeconds: (Number(span.last) - Number(span.first)) / 1000 };
    } finally {
      db.close();
    }
  } finally {
    for (const p of processes) p.kill('SIGTERM');
    await Promise.all(processes.map((p) => p.exited));
  }
}

export async function benchWorkerScaling(): Promise<WorkerScalingCell[]> {
  const cells: WorkerScalingCell[] = [];
  for (const workers of WORKERS) {
    const { drainSeconds } = await drainWith(workers);
    const jobsPerSecond = JOBS / drainSeconds;
    const base = cells[0]?.jobsPerSecond ?? jobsPerSecond;
    cells.push({ workers, jobs: JOBS, drainSeconds, jobsPerSecond, speedup: jobsPerSecond / base });
    process.stderr.write(
      `workers ${workers}: ${JOBS} jobs drained in ${drainSeconds.toFixed(2)} s (${jobsPerSecond.toFixed(0)} jobs/s, ×${(jobsPerSecond / base).toFixed(2)})\n`,
    );
  }
  return cells;
}

if (import.meta.main) {
  const cells = await benchWorkerScaling();
  if (process.argv.includes('--json'))
    console.log(JSON.stringify({ upstreamLatencyMs: UPSTREAM_LATENCY_MS, cells }));
}
