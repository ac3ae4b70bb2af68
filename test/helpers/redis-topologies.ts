/**
 * Redis topologies for tests, on loopback, from Debian's redis-server (which
 * is also the sentinel: `redis-server <conf> --sentinel`): a Sentinel set
 * (primary, replica, three sentinels) and a Redis Cluster (three masters,
 * optionally a replica each). Every process runs in a throw-away directory
 * and is stopped by its PID (services.ts kills any left at exit).
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import {
  ensureBinary,
  exitPromise,
  findRedisServer,
  freePort,
  killAndWait,
  redisAnswersPing,
  trackPid,
  untrackPid,
  waitUntil,
} from './services.ts';

const execFileAsync = promisify(execFile);

export interface RedisProcess {
  readonly port: number;
  readonly address: string;
  /** Whether the process is still running. */
  readonly running: boolean;
  /** Sends `signal` (SIGKILL: a crash) and waits for the exit. */
  kill(signal?: NodeJS.Signals): Promise<void>;
}

interface Launched extends RedisProcess {
  stop(): Promise<void>;
}

/** Starts `redis-server` with `args` (after a config file, if given) on `port`; resolves once it answers PING. */
async function launch(what: string, port: number, args: string[], dir: string): Promise<Launched> {
  const redisServer = await ensureBinary('redis-server', findRedisServer);
  const child: ChildProcess = spawn(redisServer, args, { stdio: ['ignore', 'pipe', 'pipe'], cwd: dir });
  const exited = exitPromise(child);
  try {
    await waitUntil(() => redisAnswersPing(port), exited, `${what} on 127.0.0.1:${port}`);
  } catch (err) {
    await killAndWait(child, exited, 'SIGKILL');
    throw err;
  }
  const pid = trackPid(child, dir);
  let running = true;
  void exited.then(() => {
    running = false;
  });
  const kill = async (signal: NodeJS.Signals = 'SIGTERM') => {
    await killAndWait(child, exited, signal);
    untrackPid(pid);
  };
  return {
    port,
    address: `127.0.0.1:${port}`,
    get running() {
      return running;
    },
    kill,
    async stop() {
      await kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A data node: no persistence (tests keep nothing), loopback only. */
async function dataNode(what: string, extra: string[] = []): Promise<Launched> {
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-redis-topology-'));
  const port = await freePort();
  const args = [
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--save',
    '',
    '--appendonly',
    'no',
    '--dir',
    dir,
  ];
  return launch(what, port, [...args, ...extra], dir);
}

/** Polls `check` every 50 ms until it holds; fails with `what` after `attempts` tries. */
async function until(what: string, check: () => Promise<boolean>, attempts = 400): Promise<void> {
  for (let i = 0; i < attempts; i++) {
    if (await check().catch(() => false)) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`${what}: not reached after ${(attempts * 50) / 1000}s`);
}

async function withClient<T>(port: number, use: (redis: Redis) => Promise<T>): Promise<T> {
  const redis = new Redis({
    host: '127.0.0.1',
    port,
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  redis.on('error', () => {});
  try {
    await redis.connect();
    return await use(redis);
  } finally {
    redis.disconnect();
  }
}

// --- Sentinel ---------------------------------------------------------------

export interface RedisSentinelSet {
  /** The primary's name as the sentinels know it. */
  readonly name: string;
  /** `127.0.0.1:port` of each sentinel (for `storage.redis_sentinel.sentinels`). */
  readonly sentinels: string[];
  /** The data nodes, the first started as the primary. */
  readonly nodes: RedisProcess[];
  /** The data node the sentinels name primary now. */
  primary(): Promise<RedisProcess>;
  /** SIGKILLs the current primary; resolves once the sentinels name another (a replica promoted). */
  failover(): Promise<{ from: RedisProcess; to: RedisProcess }>;
  stop(): Promise<void>;
}

export interface SentinelSetOptions {
  /** How long a primary must be unreachable before the sentinels act. @default 1000 */
  downAfterMs?: number;
}

/** One primary, one replica and three sentinels (quorum 2), ready: the sentinels see the replica and each other. */
export async function startRedisSentinelSet(options: SentinelSetOptions = {}): Promise<RedisSentinelSet> {
  const name = 'switchyard-test';
  const started: Launched[] = [];
  try {
    const primary = await dataNode('redis primary');
    started.push(primary);
    const replica = await dataNode('redis replica', ['--replicaof', '127.0.0.1', String(primary.port)]);
    started.push(replica);
    const nodes = [primary, replica];
    const sentinels: Launched[] = [];
    for (let i = 0; i < 3; i++) {
      const dir = mkdtempSync(join(tmpdir(), 'switchyard-sentinel-'));
      const port = await freePort();
      const conf = join(dir, 'sentinel.conf');
      // The sentinel rewrites this file as it learns the topology: it must be writable.
      writeFileSync(
        conf,
        [
          `port ${port}`,
          'bind 127.0.0.1',
          `dir ${dir}`,
          `sentinel monitor ${name} 127.0.0.1 ${primary.port} 2`,
          `sentinel down-after-milliseconds ${name} ${options.downAfterMs ?? 1000}`,
          `sentinel failover-timeout ${name} 10000`,
          `sentinel parallel-syncs ${name} 1`,
          '',
        ].join('\n'),
      );
      const sentinel = await launch('redis-sentinel', port, [conf, '--sentinel'], dir);
      started.push(sentinel);
      sentinels.push(sentinel);
    }
    // A failover needs every sentinel to know the replica and the other sentinels (hello messages).
    await until('sentinels see the replica and each other', async () => {
      for (const sentinel of sentinels) {
        const fields = await withClient(
          sentinel.port,
          (r) => r.call('SENTINEL', 'MASTER', name) as Promise<string[]>,
        );
        const info = new Map<string, string>();
        for (let i = 0; i + 1 < fields.length; i += 2) info.set(fields[i]!, fields[i + 1]!);
        if (Number(info.get('num-slaves')) < 1 || Number(info.get('num-other-sentinels')) < 2) return false;
      }
      return true;
    });
    // And the replica has synced (a failover promotes only a replica with data).
    await until('the replica has synced', () =>
      withClient(replica.port, async (r) => /master_link_status:up/.test(await r.info('replication'))),
    );
    const primaryPort = async (): Promise<number> => {
      for (const sentinel of sentinels) {
        const reply = await withClient(
          sentinel.port,
          (r) => r.call('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', name) as Promise<string[] | null>,
        ).catch(() => null);
        if (reply) return Number(reply[1]);
      }
      throw new Error('no sentinel answered');
    };
    const nodeOn = (port: number): RedisProcess => {
      const node = nodes.find((n) => n.port === port);
      if (!node) throw new Error(`the sentinels name an unknown primary on port ${port}`);
      return node;
    };
    return {
      name,
      sentinels: sentinels.map((s) => s.address),
      nodes,
      primary: async () => nodeOn(await primaryPort()),
      async failover() {
        const from = nodeOn(await primaryPort());
        await from.kill('SIGKILL');
        let to: RedisProcess | undefined;
        await until('the sentinels promoted a replica', async () => {
          const port = await primaryPort();
          if (port === from.port) return false;
          to = nodeOn(port);
          // Promoted: the new primary says so itself.
          return withClient(port, async (r) => /role:master/.test(await r.info('replication')));
        });
        return { from, to: to! };
      },
      async stop() {
        await Promise.all(started.map((p) => p.stop()));
      },
    };
  } catch (err) {
    await Promise.all(started.map((p) => p.stop()));
    throw err;
  }
}

// --- Cluster ----------------------------------------------------------------

export interface RedisClusterSet {
  /** `127.0.0.1:port` of every node (for `storage.redis_cluster.nodes`). */
  readonly nodes: string[];
  readonly processes: RedisProcess[];
  /** The master serving `key`'s slot now (`CLUSTER KEYSLOT`, `CLUSTER NODES`, asked of a running node). */
  masterOf(key: string): Promise<RedisProcess>;
  /**
   * SIGKILLs the master serving `key`'s slot; resolves once its replica has
   * taken the slot over and every running node reports `cluster_state:ok`.
   * Needs `replicas: true`.
   */
  failover(key: string): Promise<{ from: RedisProcess; to: RedisProcess }>;
  stop(): Promise<void>;
}

export interface ClusterOptions {
  /** One replica per master (six nodes). @default false */
  replicas?: boolean;
}

/** Three masters (and optionally a replica each), slots assigned, every node reporting `cluster_state:ok`. */
export async function startRedisCluster(options: ClusterOptions = {}): Promise<RedisClusterSet> {
  const count = options.replicas ? 6 : 3;
  const started: Launched[] = [];
  try {
    for (let i = 0; i < count; i++) {
      started.push(
        await dataNode('redis cluster node', [
          '--cluster-enabled',
          'yes',
          '--cluster-config-file',
          'nodes.conf',
          '--cluster-node-timeout',
          '2000',
        ]),
      );
    }
    const addresses = started.map((p) => p.address);
    await execFileAsync('redis-cli', [
      '--cluster',
      'create',
      ...addresses,
      '--cluster-replicas',
      options.replicas ? '1' : '0',
      '--cluster-yes',
    ]);
    await until('every cluster node reports cluster_state:ok', async () => {
      for (const node of started) {
        const info = await withClient(node.port, (r) => r.call('CLUSTER', 'INFO') as Promise<string>);
        if (!/cluster_state:ok/.test(info)) return false;
      }
      return true;
    });
    const running = () => started.filter((p) => p.running);
    const nodeOn = (port: number): RedisProcess => {
      const node = started.find((n) => n.port === port);
      if (!node) throw new Error(`the cluster names an unknown node on port ${port}`);
      return node;
    };
    /** Asks the running nodes in turn (any one answering will do) for `key`'s slot and who serves it. */
    const masterPortOf = async (key: string): Promise<number> => {
      for (const node of running()) {
        const port = await withClient(node.port, async (r) => {
          const slot = Number(await r.call('CLUSTER', 'KEYSLOT', key));
          return servingMaster(String(await r.call('CLUSTER', 'NODES')), slot);
        }).catch(() => undefined);
        if (port !== undefined) return port;
      }
      throw new Error(`no running cluster node knows who serves ${JSON.stringify(key)}`);
    };
    const clusterOk = async (): Promise<boolean> => {
      for (const node of running()) {
        const info = await withClient(node.port, (r) => r.call('CLUSTER', 'INFO') as Promise<string>);
        if (!/cluster_state:ok/.test(info)) return false;
      }
      return true;
    };
    return {
      nodes: addresses,
      processes: started,
      masterOf: async (key) => nodeOn(await masterPortOf(key)),
      async failover(key) {
        const from = nodeOn(await masterPortOf(key));
        await from.kill('SIGKILL');
        let to: RedisProcess | undefined;
        // A replica acts after cluster-node-timeout (2 s) and an election.
        await until(
          'a replica took over the slot',
          async () => {
            const port = await masterPortOf(key);
            if (port === from.port) return false;
            to = nodeOn(port);
            return to.running && (await clusterOk());
          },
          600,
        );
        return { from, to: to! };
      },
      async stop() {
        await Promise.all(started.map((p) => p.stop()));
      },
    };
  } catch (err) {
    await Promise.all(started.map((p) => p.stop()));
    throw err;
  }
}

/**
 * The port of the master that `CLUSTER NODES` says serves `slot`, skipping
 * nodes flagged failed. A line: `<id> <ip:port@cport[,hostname]> <flags>
 * <master> <ping> <pong> <epoch> <link> <slot or range>...`.
 */
function servingMaster(nodes: string, slot: number): number | undefined {
  for (const line of nodes.split('\n')) {
    const fields = line.trim().split(' ');
    if (fields.length < 8) continue;
    const flags = fields[2]!.split(',');
    if (!flags.includes('master') || flags.includes('fail') || flags.includes('fail?')) continue;
    const serves = fields.slice(8).some((range) => {
      if (range.startsWith('[')) return false; // a slot being migrated or imported
      const [first, last = first] = range.split('-').map(Number);
      return slot >= first! && slot <= last!;
    });
    if (serves) return Number(/:(\d+)@/.exec(fields[1]!)?.[1]);
  }
  return undefined;
}
