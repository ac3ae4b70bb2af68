/**
 * Throughput against the number of gateway instances behind nginx
 * (deploy/nginx/switchyard.conf, Debian's nginx, one worker): 1, 2 and 3
 * `switchyard start` processes sharing one Redis (limits, breakers, cache)
 * and one PostgreSQL database (keys, ledger), as a fleet runs; plus one
 * instance without nginx, for what the extra hop costs. Each point is wrk
 * (one thread, 64 connections) posting a small non-streaming chat completion
 * with a virtual key that has a rate limit (so every request does the shared
 * Redis work a limited key costs) to the gateway's in-process mock provider,
 * so the number is the gateway's own cost per request, not an upstream's.
 *
 * Everything shares this machine's cores (wrk, nginx, the instances, Redis,
 * PostgreSQL): the curve shows how far more instances help on it, and the CPU
 * each part used says where the rest went.
 *
 * Run alone: node bench/instances.ts [--json] [--seconds 10] [--instances 1,2,3]
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { createFleet, type Fleet } from '../test/helpers/fleet.ts';
import { newMasterKey } from '../test/helpers/gateway.ts';
import { type Nginx, startNginx } from '../test/helpers/nginx.ts';
import { createPostgresDatabase, startPostgres, startRedis } from '../test/helpers/services.ts';
import { CLK_TCK } from './procs.ts';
import { PROXY_NODE_FLAGS } from './settings.ts';
import { WRK, wrkClosedLoop } from './wrk.ts';

const arg = (name: string): string | undefined => {
  const i = process.argv.indexOf(name);
  return i < 0 ? undefined : process.argv[i + 1];
};
const SECONDS = Number(arg('--seconds') ?? 10);
const WARMUP_SECONDS = 2;
const CONNECTIONS = 64;
const INSTANCES = (arg('--instances') ?? '1,2,3').split(',').map(Number);

export interface InstancesPoint {
  instances: number;
  nginx: boolean;
  rps: number;
  errors: number;
  p50Ms: number;
  p99Ms: number;
  /** CPU seconds per second of each part during the measurement (1.0 = one core busy). */
  cpu: { gateways: number; nginx: number; redis: number; postgres: number };
  /** Requests per second for each core the gateways kept busy. */
  rpsPerGatewayCore: number;
  /** Resident memory of each instance at the end (MiB). */
  rssMiB: number[];
}

/** CPU time (s) of a process and its threads, from /proc. */
function cpuSeconds(pid: number): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    // utime and stime: fields 14 and 15 of stat, 12 and 13 after "pid (comm) ".
    return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
  } catch {
    return 0;
  }
}

function rssMiB(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8')
    .split('\n')
    .find((l) => l.startsWith('VmRSS:'));
  return Number(/(\d+)/.exec(line ?? '')?.[1] ?? 0) / 1024;
}

/** Pids of a process and all its descendants (nginx's master and worker; PostgreSQL's backends). */
function family(root: number): number[] {
  const children = (pid: number): number[] => {
    try {
      return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8')
        .trim()
        .split(/\s+/)
        .filter(Boolean)
        .map(Number);
    } catch {
      return [];
    }
  };
  const out = [root];
  for (let i = 0; i < out.length; i++) out.push(...children(out[i]!));
  return out;
}

function pidListening(port: number): number | undefined {
  // The pid that owns a listening loopback socket: ss is in iproute2, on every Debian.
  const out = execFileSync('ss', ['-ltnpH', `sport = :${port}`], { encoding: 'utf8' });
  const m = /pid=(\d+)/.exec(out);
  return m ? Number(m[1]) : undefined;
}

async function measure(
  fleet: Fleet,
  size: number,
  target: string,
  key: string,
  parts: { nginx?: number; redis: number; postgres: number },
): Promise<Omit<InstancesPoint, 'instances' | 'nginx'>> {
  const t = {
    name: 'chat',
    origin: target,
    path: '/v1/chat/completions',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({
      model: 'mock',
      messages: [{ role: 'user', content: 'How many instances?' }],
      max_tokens: 8,
    }),
    check: () => undefined,
  };
  wrkClosedLoop(t, CONNECTIONS, WARMUP_SECONDS);
  const gatewayPids = Array.from({ length: size }, (_, i) => fleet.instance(i).child.pid!);
  const sample = () => ({
    gateways: gatewayPids.reduce((a, pid) => a + cpuSeconds(pid), 0),
    nginx: parts.nginx === undefined ? 0 : family(parts.nginx).reduce((a, pid) => a + cpuSeconds(pid), 0),
    redis: cpuSeconds(parts.redis),
    postgres: family(parts.postgres).reduce((a, pid) => a + cpuSeconds(pid), 0),
  });
  const before = sample();
  const started = performance.now();
  const result = wrkClosedLoop(t, CONNECTIONS, SECONDS);
  const elapsed = (performance.now() - started) / 1000;
  const after = sample();
  const cpu = {
    gateways: (after.gateways - before.gateways) / elapsed,
    nginx: (after.nginx - before.nginx) / elapsed,
    redis: (after.redis - before.redis) / elapsed,
    postgres: (after.postgres - before.postgres) / elapsed,
  };
  const errors = result.errors.total;
  return {
    rps: result.rps,
    errors,
    p50Ms: result.latencyUs.p50 / 1000,
    p99Ms: result.latencyUs.p99 / 1000,
    cpu,
    rpsPerGatewayCore: result.rps / cpu.gateways,
    rssMiB: gatewayPids.map(rssMiB),
  };
}

export async function benchInstances(): Promise<InstancesPoint[]> {
  if (!WRK) throw new Error('wrk not found: apt-get install wrk');
  const [redis, postgres] = await Promise.all([startRedis(), startPostgres()]);
  const redisPid = pidListening(Number(new URL(redis.url).port))!;
  const postgresPid = pidListening(Number(new URL(postgres.url).port))!;
  const points: InstancesPoint[] = [];
  try {
    for (const size of INSTANCES) {
      const masterKey = newMasterKey();
      const fleet = await createFleet(size, {
        masterKey,
        // The V8 flags `npm start` and the switchyard shebang use (bin/switchyard.js).
        nodeArgs: PROXY_NODE_FLAGS,
        env: { DATABASE_URL: await createPostgresDatabase(postgres.url) },
        config: {
          storage: { redis_url: redis.url, redis_prefix: `bench${size}:` },
          // One access line per request costs what it costs in production too; debug lines do not.
          logging: { level: 'info' },
        },
      });
      let nginx: Nginx | undefined;
      try {
        await fleet.start(0);
        const res = await fetch(`${fleet.instance(0).url}/admin/keys`, {
          method: 'POST',
          headers: { authorization: `Bearer ${masterKey}`, 'content-type': 'application/json' },
          // Far above what this machine serves: every request is counted in Redis, none refused.
          body: JSON.stringify({ name: 'bench', limits: { requests_per_minute: 100_000_000 } }),
        });
        const key = ((await res.json()) as { key: string }).key;
        await Promise.all(Array.from({ length: size - 1 }, (_, i) => fleet.start(i + 1)));
        nginx = await startNginx({
          upstreamPorts: fleet.ports,
          perClientRate: 1_000_000,
          perClientBurst: 1_000_000,
        });
        const nginxPid = pidListening(Number(new URL(nginx.url).port))!;
        const parts = { redis: redisPid, postgres: postgresPid };
        if (size === 1) {
          const direct = await measure(fleet, size, fleet.instance(0).url, key, parts);
          points.push({ instances: 1, nginx: false, ...direct });
          report(points.at(-1)!);
        }
        const balanced = await measure(fleet, size, nginx.url, key, { ...parts, nginx: nginxPid });
        points.push({ instances: size, nginx: true, ...balanced });
        report(points.at(-1)!);
      } finally {
        await nginx?.stop();
        await fleet.close();
      }
    }
  } finally {
    await Promise.all([redis.stop(), postgres.stop()]);
  }
  return points;
}

function report(p: InstancesPoint): void {
  const cpu = Object.entries(p.cpu)
    .map(([k, v]) => `${k} ${v.toFixed(2)}`)
    .join(', ');
  process.stderr.write(
    `${p.instances} instance(s)${p.nginx ? ' behind nginx' : ', direct'}: ${p.rps.toFixed(0)} req/s, ` +
      `p50 ${p.p50Ms.toFixed(1)} ms, p99 ${p.p99Ms.toFixed(1)} ms, errors ${p.errors}; cpu (cores) ${cpu}; ` +
      `${p.rpsPerGatewayCore.toFixed(0)} req/s per gateway core; rss ${p.rssMiB.map((m) => m.toFixed(0)).join('/')} MiB\n`,
  );
}

if (import.meta.main) {
  process.stderr.write(`${cpus().length} cores; wrk -t1 -c${CONNECTIONS} -d${SECONDS}s\n`);
  const points = await benchInstances();
  if (process.argv.includes('--json')) console.log(JSON.stringify({ cores: cpus().length, points }));
}
