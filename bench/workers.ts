/**
 * Throughput against the number of HTTP worker processes
 * (`switchyard start --workers N`), the same ~1 KB chat workload as
 * `npm run bench`, through wrk (closed loop, keep-alive connections) against
 * the bench upstream, with a virtual key, its limits counted in Redis (which
 * `--workers N > 1` needs) and the ledger on.
 *
 *   node bench/workers.ts [--counts 1,2,auto] [--seconds 10] [--connections 50]
 *
 * Nothing is pinned: the workers are meant to spread over every core, and on
 * a small machine they share those cores with wrk, the upstream and Redis,
 * which the numbers then include (the note printed says how many CPUs).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { startRedis } from '../test/helpers/services.ts';
import { chatTarget } from './chat-workload.ts';
import { childEnv, prepareGateway } from './gateway-process.ts';
import { closedLoop, makePool } from './load.ts';
import { cpuTimeUs, startNode } from './procs.ts';
import { PROXY_NODE_FLAGS, ROOT } from './settings.ts';
import { WRK, wrkClosedLoop } from './wrk.ts';

const { values } = parseArgs({
  options: {
    counts: { type: 'string', default: '1,2,auto' },
    seconds: { type: 'string', default: '10' },
    connections: { type: 'string', default: '50' },
  },
});
const seconds = Number(values.seconds);
const connections = Number(values.connections);
const counts = values.counts.split(',');

if (!WRK) throw new Error('bench/workers.ts needs wrk (apt-get install wrk)');

const redis = await startRedis();
const upstream = startNode([join(ROOT, 'bench/bench-upstream.ts')], { stdout: 'pipe' });
const upstreamPort = (JSON.parse(await upstream.ready) as { port: number }).port;
const rows: Array<{
  workers: string;
  processes: number;
  rps: number;
  p50Ms: number;
  p99Ms: number;
  errors: number;
  cpuS: number;
}> = [];

try {
  for (const count of counts) {
    const setup = prepareGateway(`http://127.0.0.1:${upstreamPort}`);
    const config = JSON.parse(readFileSync(setup.configPath, 'utf8')) as Record<string, unknown>;
    config['storage'] = { redis_url: redis.url, redis_prefix: `benchworkers${count}:` };
    writeFileSync(setup.configPath, JSON.stringify(config, null, 2));
    const gateway = startNode(
      [
        ...PROXY_NODE_FLAGS,
        join(ROOT, 'bin/switchyard.js'),
        'start',
        '--config',
        setup.configPath,
        '--workers',
        count,
      ],
      {
        cwd: setup.dir,
        env: childEnv({ PORT: '0', LOG_LEVEL: 'warn', SWITCHYARD_MASTER_KEY: setup.masterKey }),
        stdout: 'pipe',
        readyOn: /listening on (http:\/\/\S+)/,
        readyTimeoutMs: 60_000,
      },
    );
    try {
      const url = await gateway.ready;
      const workerPids = /pids ([\d, ]+)\)/.exec(gateway.stderr())?.[1]?.split(', ').map(Number);
      // With workers, the primary's CPU (accepting, handing connections over) counts too.
      const pids = workerPids ? [gateway.pid, ...workerPids] : [gateway.pid];
      const target = chatTarget(`workers=${count}`, url, setup.virtualKey);
      // Warm-up: JIT, pools, caches of every worker.
      const pool = makePool(url, connections);
      await closedLoop(pool, target, connections, 3);
      await pool.close();
      const cpuBefore = pids.reduce((sum, pid) => sum + cpuTimeUs(pid), 0);
      const result = wrkClosedLoop(target, connections, seconds);
      const cpuS = (pids.reduce((sum, pid) => sum + cpuTimeUs(pid), 0) - cpuBefore) / 1e6;
      rows.push({
        workers: count,
        processes: workerPids?.length ?? 1,
        rps: Math.round(result.rps),
        p50Ms: Math.round(result.latencyUs.p50 / 100) / 10,
        p99Ms: Math.round(result.latencyUs.p99 / 100) / 10,
        errors: result.errors.total,
        cpuS: Math.round(cpuS * 10) / 10,
      });
      process.stderr.write(`${JSON.stringify(rows.at(-1))}\n`);
    } finally {
      await gateway.stop(60_000);
    }
  }
} finally {
  await upstream.stop();
  await redis.stop();
}

process.stdout.write(
  `\nthroughput vs HTTP workers (${availableParallelism()} CPUs shared with wrk, the upstream and Redis; c=${connections}, ${seconds} s):\n`,
);
process.stdout.write('workers  processes  req/s    p50 ms  p99 ms  errors  gateway CPU s\n');
for (const r of rows) {
  process.stdout.write(
    `${r.workers.padEnd(9)}${String(r.processes).padEnd(11)}${String(r.rps).padEnd(9)}${String(r.p50Ms).padEnd(8)}${String(r.p99Ms).padEnd(8)}${String(r.errors).padEnd(8)}${r.cpuS}\n`,
  );
}
