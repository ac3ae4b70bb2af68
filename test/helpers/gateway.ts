/**
 * Gateways for tests: in-process (fast, for behaviour) and as child processes
 * (for the CLI, signals and multi-instance behaviour). Both write their logs
 * into the run's log dir, and register every secret they use, so the runner's
 * final scan can prove no secret reached a log line.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { appendFileSync, mkdirSync, mkdtempSync, openSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import pino from 'pino';
import { validateConfig } from '../../src/config/load.ts';
import { createLogger } from '../../src/observability/logger.ts';
import { Gateway } from '../../src/server/gateway.ts';

export const ROOT = resolve(import.meta.dirname, '../..');
export const NODE = process.execPath;

/** The run-wide log dir (set by the runner), or a private one when a file runs alone. */
export function logDir(): string {
  const dir = process.env['SWITCHYARD_TEST_LOG_DIR'] ?? join(tmpdir(), 'switchyard-test-logs');
  mkdirSync(dir, { recursive: true });
  return dir;
}

/** Records a secret for the end-of-run log scan. */
export function registerSecret(secret: string): void {
  appendFileSync(join(logDir(), 'secrets.txt'), `${secret}\n`);
}

export function newMasterKey(): string {
  const key = `sk-sy-master-test${randomBytes(18).toString('base64url')}`;
  registerSecret(key);
  return key;
}

export function tempDir(prefix = 'switchyard-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export interface TestGateway {
  gateway: Gateway;
  /** http://127.0.0.1:PORT */
  url: string;
  /** url + '/v1', for SDK clients. */
  baseUrl: string;
  masterKey: string;
  logFile: string;
  close(): Promise<void>;
}

export interface TestGatewayOptions {
  /** Raw config (as in switchyard.yaml); providers/models default to the mock. */
  config?: Record<string, unknown>;
  databaseUrl?: string;
}

/** Starts a gateway in this process on a free loopback port. */
export async function startTestGateway(options: TestGatewayOptions = {}): Promise<TestGateway> {
  const masterKey = newMasterKey();
  const dataDir = tempDir();
  const raw: Record<string, unknown> = {
    providers: { mock: { type: 'mock' } },
    models: { mock: { targets: [{ provider: 'mock', model: 'mock-1' }] } },
    // No background provider probes (GET /models) unless a test asks: many count upstream requests.
    health: { provider_probe_interval_ms: 0 },
    ...options.config,
    master_key: masterKey,
    data_dir: dataDir,
  };
  const config = validateConfig(raw);
  const logFile = join(logDir(), `gateway-inproc-${process.pid}-${randomBytes(4).toString('hex')}.log`);
  const logger = createLogger({
    level: 'info',
    destination: pino.destination({ dest: logFile, sync: true }),
  });
  const gateway = await Gateway.create({
    config,
    logger,
    ...(options.databaseUrl ? { databaseUrl: options.databaseUrl } : {}),
  });
  const address = await gateway.listen('127.0.0.1', 0);
  const url = `http://127.0.0.1:${address.port}`;
  return { gateway, url, baseUrl: `${url}/v1`, masterKey, logFile, close: () => gateway.close() };
}

export interface SpawnedGateway {
  child: ChildProcess;
  url: string;
  baseUrl: string;
  masterKey: string;
  /** Resolves with the exit code (or the signal name). */
  exited: Promise<number | string>;
  stderr(): string;
  /** Where the child's stdout (its JSON log lines) goes. */
  stdoutFile: string;
  kill(signal?: NodeJS.Signals): void;
}

export interface SpawnOptions {
  /** `start` (default: resolves once it listens) or `worker` (resolves once it runs its queues; no URL). */
  command?: 'start' | 'worker';
  config?: Record<string, unknown>;
  env?: Record<string, string>;
  args?: string[];
  masterKey?: string;
  dataDir?: string;
  /** Flags for node itself, before the script (e.g. the V8 flags `npm start` uses). */
  nodeArgs?: string[];
}

/** Writes a config file (JSON is valid YAML) and returns its path. */
export function writeConfig(config: Record<string, unknown>, dir = tempDir()): string {
  const path = join(dir, 'switchyard.yaml');
  writeFileSync(path, JSON.stringify(config, null, 2));
  return path;
}

/** Runs `switchyard <args>` to completion; returns exit code and output. */
export function runCli(
  args: string[],
  options: { env?: Record<string, string>; cwd?: string } = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(NODE, [join(ROOT, 'bin/switchyard.js'), ...args], {
      cwd: options.cwd ?? tempDir(),
      env: { ...baseEnv(), ...options.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    child.on('error', reject);
    child.on('close', (code) => {
      const file = join(logDir(), `cli-${process.pid}-${randomBytes(4).toString('hex')}.log`);
      writeFileSync(file, `${stdout}\n${stderr}`);
      resolvePromise({ code, stdout, stderr });
    });
  });
}

/** Environment for children: no provider keys or config leaking in from the developer's shell. */
function baseEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const name of ['PATH', 'HOME', 'LANG', 'TMPDIR', 'SWITCHYARD_TEST_LOG_DIR']) {
    const value = process.env[name];
    if (value !== undefined) env[name] = value;
  }
  return env;
}

/** Starts `switchyard start` as a child process on a free port; resolves once it listens. */
export async function spawnGateway(options: SpawnOptions = {}): Promise<SpawnedGateway> {
  const masterKey = options.masterKey ?? newMasterKey();
  const dataDir = options.dataDir ?? tempDir();
  const config = {
    providers: { mock: { type: 'mock' } },
    models: { mock: { targets: [{ provider: 'mock', model: 'mock-1' }] } },
    ...options.config,
    data_dir: dataDir,
  };
  const configPath = writeConfig(config);
  const name = `gateway-child-${process.pid}-${randomBytes(4).toString('hex')}`;
  const stdoutFile = join(logDir(), `${name}.stdout.log`);
  const out = openSync(stdoutFile, 'a');
  const child = spawn(
    NODE,
    [
      ...(options.nodeArgs ?? []),
      join(ROOT, 'bin/switchyard.js'),
      options.command ?? 'start',
      '--config',
      configPath,
      ...(options.args ?? []),
    ],
    {
      cwd: dataDir,
      env: { ...baseEnv(), PORT: '0', SWITCHYARD_MASTER_KEY: masterKey, ...options.env },
      stdio: ['ignore', out, 'pipe'],
    },
  );
  let stderr = '';
  const exited = new Promise<number | string>((resolveExit) => {
    child.on('exit', (code, signal) => resolveExit(code ?? signal ?? -1));
  });
  const url = await new Promise<string>((resolveUrl, reject) => {
    const onData = (d: Buffer) => {
      stderr += d.toString();
      const match = /listening on (http:\/\/[^\s]+)|worker running queues/.exec(stderr);
      if (match) resolveUrl(match[1] ?? '');
    };
    child.stderr!.on('data', onData);
    exited.then((code) => reject(new Error(`gateway exited early (${code}): ${stderr}`)));
  });
  child.stderr!.on('close', () => {
    writeFileSync(join(logDir(), `${name}.stderr.log`), stderr);
  });
  return {
    child,
    url,
    baseUrl: `${url}/v1`,
    masterKey,
    exited,
    stderr: () => stderr,
    stdoutFile,
    kill: (signal = 'SIGTERM') => {
      child.kill(signal);
    },
  };
}

/** The status of one small chat request to the `mock` model with `key` (the body is drained). */
export async function chatStatus(gw: { baseUrl: string }, key: string): Promise<number> {
  const res = await fetch(`${gw.baseUrl}/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'mock', messages: [{ role: 'user', content: 'ping' }] }),
  });
  await res.arrayBuffer();
  return res.status;
}
