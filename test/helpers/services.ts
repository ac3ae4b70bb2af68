/**
 * Private Redis and PostgreSQL servers for tests: Debian packages, free
 * loopback ports, throw-away data dirs, each stopped by its PID.
 *
 * The test runner (scripts/run-tests.ts) starts one of each and passes their
 * URLs as TEST_REDIS_URL / TEST_DATABASE_URL; a test that needs to stop or
 * restart a server starts its own.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';

const execFileAsync = promisify(execFile);

export interface Service {
  url: string;
  stop(): Promise<void>;
}

export interface PostgresService extends Service {
  /** The role's password, so tests can check it never leaks. */
  readonly password: string;
  /** Stops the server but keeps its data directory and port. */
  halt(): Promise<void>;
  /** Starts a halted server again on the same data directory and port. */
  resume(): Promise<void>;
}

const READY_ATTEMPTS = 100;
const READY_INTERVAL_MS = 100;

// Servers still running when the process exits (a crashed test, an uncaught
// error) are killed here so no test leaves a server behind.
const live = new Map<number, string>();
process.once('exit', () => {
  for (const [pid, dir] of live) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {}
    rmSync(dir, { recursive: true, force: true });
  }
});

export function testRedisUrl(): string {
  return requireEnv('TEST_REDIS_URL');
}

export function testPostgresUrl(): string {
  return requireEnv('TEST_DATABASE_URL');
}

function requireEnv(name: string): string {
  const value = process.env[name];
  if (value === undefined || value === '') {
    throw new Error(
      `${name} is not set: run the tests through \`npm test\` or \`node scripts/run-tests.js [files]\`, which start Redis and PostgreSQL`,
    );
  }
  return value;
}

export interface RedisService extends Service {
  /** Stops the server but keeps its port (its data is gone: it keeps none). */
  halt(): Promise<void>;
  /** Starts a halted server again on the same port. */
  resume(): Promise<void>;
}

export async function startRedis(): Promise<RedisService> {
  const redisServer = await ensureBinary('redis-server', findRedisServer);
  for (let tries = 0; ; tries++) {
    const dir = mkdtempSync(join(tmpdir(), 'switchyard-redis-'));
    const port = await freePort();
    const launch = async () => {
      const child = spawn(
        redisServer,
        ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      );
      const exited = exitPromise(child);
      try {
        await waitUntil(() => redisAnswersPing(port), exited, `redis-server on 127.0.0.1:${port}`);
      } catch (err) {
        await killAndWait(child, exited);
        throw err;
      }
      return { child, exited, pid: trackPid(child, dir) };
    };
    let running: Awaited<ReturnType<typeof launch>> | undefined;
    try {
      running = await launch();
    } catch (err) {
      rmSync(dir, { recursive: true, force: true });
      // Another process may have taken the port between our probe and bind.
      if (tries < 3) continue;
      throw err;
    }
    const halt = async () => {
      if (running === undefined) return;
      await killAndWait(running.child, running.exited);
      live.delete(running.pid);
      running = undefined;
    };
    return {
      url: `redis://127.0.0.1:${port}`,
      halt,
      async resume() {
        running ??= await launch();
      },
      async stop() {
        await halt();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  }
}

export async function startPostgres(): Promise<PostgresService> {
  const bin = await ensureBinary('initdb', findPostgresBin);
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-pg-'));
  const dataDir = join(dir, 'data');
  const owner = await postgresOwner();
  if (owner) chownSync(dir, owner.uid, owner.gid);
  const user = 'switchyard';
  const password = randomBytes(12).toString('hex');
  const pwfile = join(dir, 'pwfile');
  writeFileSync(pwfile, `${password}\n`, { mode: 0o600 });
  if (owner) chownSync(pwfile, owner.uid, owner.gid);
  // Password auth over TCP (so URLs carry a password, as in production); trust
  // on the private unix socket only.
  await execFileAsync(
    join(bin, 'initdb'),
    [
      '-D',
      dataDir,
      '-U',
      user,
      `--pwfile=${pwfile}`,
      '--auth-host=scram-sha-256',
      '--auth-local=trust',
      '--encoding=UTF8',
      '--no-sync',
    ],
    { ...(owner ?? {}), cwd: dir, env: { ...process.env, LC_ALL: 'C' } },
  );
  rmSync(pwfile);
  return runCluster({ bin, dir, dataDir, owner, user, password });
}

/**
 * A streaming replica of `primaryUrl`'s cluster (one started by startPostgres):
 * `pg_basebackup -R` over loopback, then a server of its own on a free port,
 * in hot standby (read-only, following the primary's WAL).
 */
export async function startPostgresReplica(primaryUrl: string): Promise<PostgresService> {
  const bin = await ensureBinary('initdb', findPostgresBin);
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-pg-replica-'));
  const dataDir = join(dir, 'data');
  const owner = await postgresOwner();
  if (owner) chownSync(dir, owner.uid, owner.gid);
  const primary = new URL(primaryUrl);
  const password = decodeURIComponent(primary.password);
  await execFileAsync(
    join(bin, 'pg_basebackup'),
    [
      '-h',
      '127.0.0.1',
      '-p',
      primary.port,
      '-U',
      primary.username,
      '-D',
      dataDir,
      '-R',
      '-X',
      'stream',
      '-c',
      'fast',
      '--no-sync',
    ],
    { ...(owner ?? {}), cwd: dir, env: { ...process.env, PGPASSWORD: password, LC_ALL: 'C' } },
  );
  return runCluster({ bin, dir, dataDir, owner, user: primary.username, password });
}

/** Runs a PostgreSQL server on an initialised data dir, on a free loopback port, until stopped. */
async function runCluster(cluster: {
  bin: string;
  dir: string;
  dataDir: string;
  owner: { uid: number; gid: number } | undefined;
  user: string;
  password: string;
}): Promise<PostgresService> {
  const { bin, dir, dataDir, owner, user, password } = cluster;
  let port = await freePort();
  let child: ChildProcess | undefined;
  let exited: Promise<string> = Promise.resolve('');
  let pid = 0;

  const start = async (): Promise<void> => {
    const proc = spawn(
      join(bin, 'postgres'),
      [
        '-D',
        dataDir,
        '-p',
        String(port),
        '-k',
        dir,
        '-c',
        'listen_addresses=127.0.0.1',
        // Test speed: durability is worthless for a throw-away cluster.
        '-c',
        'fsync=off',
        '-c',
        'synchronous_commit=off',
        '-c',
        'full_page_writes=off',
        '-c',
        'shared_buffers=32MB',
        '-c',
        'max_connections=200',
        '-c',
        'log_min_messages=warning',
      ],
      { ...(owner ?? {}), cwd: dir, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LC_ALL: 'C' } },
    );
    const procExited = exitPromise(proc);
    try {
      await waitUntil(
        () => postgresAnswers(port, user, password),
        procExited,
        `postgres on 127.0.0.1:${port}`,
      );
    } catch (err) {
      await killAndWait(proc, procExited, 'SIGINT');
      throw err;
    }
    child = proc;
    exited = procExited;
    pid = trackPid(proc, dir);
  };
  const halt = async (): Promise<void> => {
    if (child === undefined) return;
    // SIGINT is PostgreSQL's "fast" shutdown: disconnect clients, then exit cleanly.
    await killAndWait(child, exited, 'SIGINT');
    live.delete(pid);
    child = undefined;
  };

  for (let tries = 0; ; tries++) {
    try {
      await start();
      break;
    } catch (err) {
      if (tries >= 3) {
        rmSync(dir, { recursive: true, force: true });
        throw err;
      }
      port = await freePort();
    }
  }

  return {
    url: `postgres://${user}:${password}@127.0.0.1:${port}/postgres`,
    password,
    halt,
    async resume() {
      if (child === undefined) await start();
    },
    async stop() {
      await halt();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Creates an empty database next to `adminUrl`'s and returns its URL. */
export async function createPostgresDatabase(adminUrl: string, name?: string): Promise<string> {
  const dbName = name ?? `t_${randomBytes(6).toString('hex')}`;
  // Identifiers cannot be bound parameters; a strict pattern keeps this safe.
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(dbName)) throw new Error(`invalid database name: ${dbName}`);
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    await client.query(`CREATE DATABASE "${dbName}"`);
  } finally {
    await client.end();
  }
  const url = new URL(adminUrl);
  url.pathname = `/${dbName}`;
  return url.toString();
}

// --- installation -----------------------------------------------------------

let aptUpdated: Promise<void> | undefined;

/** The path `find` returns, installing the Debian `packages` first (as root) when it finds nothing. */
export async function ensureBinary(
  what: string,
  find: () => string | undefined,
  packages: readonly string[] = ['redis-server', 'postgresql'],
): Promise<string> {
  const found = find();
  if (found !== undefined) return found;
  if (process.getuid?.() !== 0) {
    throw new Error(`${what} not found; install the Debian packages ${packages.join(' and ')}`);
  }
  // The README promises `npm ci && npm test` on a fresh Debian machine as root.
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  aptUpdated ??= execFileAsync('apt-get', ['update'], { env }).then(() => {});
  await aptUpdated;
  await execFileAsync('apt-get', ['install', '-y', '--no-install-recommends', ...packages], {
    env,
    maxBuffer: 64 * 1024 * 1024,
  });
  const after = find();
  if (after === undefined) throw new Error(`${what} still not found after apt-get install`);
  return after;
}

/** Debian's Chromium for the browser tests (playwright-core drives it), installed when missing. */
export function ensureChromium(): Promise<string> {
  return ensureBinary('chromium', () => (existsSync('/usr/bin/chromium') ? '/usr/bin/chromium' : undefined), [
    'chromium',
  ]);
}

export function findRedisServer(): string | undefined {
  for (const dir of (process.env['PATH'] ?? '/usr/bin').split(delimiter)) {
    const candidate = join(dir, 'redis-server');
    if (existsSync(candidate)) return candidate;
  }
  return existsSync('/usr/bin/redis-server') ? '/usr/bin/redis-server' : undefined;
}

function findPostgresBin(): string | undefined {
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return undefined;
  const versions = readdirSync(root)
    .filter((v) => existsSync(join(root, v, 'bin', 'initdb')))
    .sort((a, b) => Number(b) - Number(a));
  return versions[0] === undefined ? undefined : join(root, versions[0], 'bin');
}

// PostgreSQL refuses to run as root: when we are root, run it as `postgres`.
async function postgresOwner(): Promise<{ uid: number; gid: number } | undefined> {
  if (process.getuid?.() !== 0) return undefined;
  const [uid, gid] = await Promise.all([
    execFileAsync('id', ['-u', 'postgres']),
    execFileAsync('id', ['-g', 'postgres']),
  ]);
  return { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
}

// --- process and readiness helpers -------------------------------------------

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** Killed (and `dir` removed) when this process exits, unless `untrackPid` was called first. */
export function trackPid(child: ChildProcess, dir: string): number {
  const pid = child.pid ?? 0;
  live.set(pid, dir);
  return pid;
}

export function untrackPid(pid: number): void {
  live.delete(pid);
}

/** Resolves when the child has exited, with the tail of its output (it explains a failed start). */
export function exitPromise(child: ChildProcess): Promise<string> {
  let output = '';
  for (const stream of [child.stdout, child.stderr]) {
    stream?.setEncoding('utf8');
    stream?.on('data', (chunk: string) => {
      output = (output + chunk).slice(-4000);
    });
  }
  return new Promise((resolve) => {
    child.once('exit', () => resolve(output));
    child.once('error', (err) => resolve(`${output}\n${err.message}`));
  });
}

export async function killAndWait(
  child: ChildProcess,
  exited: Promise<string>,
  signal: NodeJS.Signals = 'SIGTERM',
): Promise<void> {
  if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
    try {
      process.kill(child.pid, signal);
    } catch {}
  }
  await exited;
}

/** Polls `probe` until it succeeds, the process exits, or the attempts run out. */
export async function waitUntil(
  probe: () => Promise<boolean>,
  exited: Promise<string>,
  what: string,
): Promise<void> {
  let dead = false;
  void exited.then(() => {
    dead = true;
  });
  for (let i = 0; i < READY_ATTEMPTS; i++) {
    if (dead) throw new Error(`${what} exited during start-up:\n${await exited}`);
    if (await probe()) return;
    await new Promise((resolve) => setTimeout(resolve, READY_INTERVAL_MS));
  }
  throw new Error(`${what} not ready after ${(READY_ATTEMPTS * READY_INTERVAL_MS) / 1000}s`);
}

export function redisAnswersPing(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = new Socket();
    let reply = '';
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1000, () => done(false));
    socket.once('error', () => done(false));
    socket.on('data', (chunk) => {
      reply += chunk.toString('utf8');
      if (reply.includes('\r\n')) done(reply.startsWith('+PONG'));
    });
    socket.connect(port, '127.0.0.1', () => socket.write('PING\r\n'));
  });
}

async function postgresAnswers(port: number, user: string, password: string): Promise<boolean> {
  const client = new pg.Client({
    host: '127.0.0.1',
    port,
    user,
    password,
    database: 'postgres',
    connectionTimeoutMillis: 1000,
  });
  client.on('error', () => {});
  try {
    await client.connect();
    await client.query('select 1');
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => {});
  }
}
