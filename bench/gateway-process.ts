/**
 * The gateway as `npm run bench` runs it: a config with one model in front of
 * the mock, a virtual key created with the CLI (as a real client would use),
 * `switchyard start` pinned to its CPU (optionally under --cpu-prof), and the
 * evidence afterwards that it did its work: metrics, access log lines, ledger
 * rows.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { chatTarget, jsonBody, MODEL } from './chat-workload.ts';
import { closedLoop, makePool } from './load.ts';
import { cpuCount, type Started, startNode } from './procs.ts';
import { type ProfileSummary, summarizeProfile } from './profile.ts';
import { CONCURRENCY, log, PROFILE_S, PROXY_CPU, PROXY_NODE_FLAGS, ROOT, WARMUP_S } from './settings.ts';

/** Children get a clean environment: no provider keys or config from the caller's shell. */
export function childEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const name of ['PATH', 'HOME', 'LANG', 'TMPDIR']) {
    const v = process.env[name];
    if (v !== undefined) env[name] = v;
  }
  return { ...env, ...extra };
}

export interface GatewaySetup {
  dir: string;
  configPath: string;
  dataDir: string;
  masterKey: string;
  virtualKey: string;
  keyKind: 'virtual' | 'master';
}

/** The model the growth phase streams slowly through (bench/growth.ts). */
export const SLOW_MODEL = 'slow-stream';
/** The same upstream model with the response cache on: its repeated requests are exact hits. */
export const CACHED_MODEL = 'cached';

export function prepareGateway(mockUrl: string, slowMockUrl?: string): GatewaySetup {
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-bench-'));
  const dataDir = join(dir, 'data');
  mkdirSync(dataDir);
  const masterKey = `sk-sy-master-bench${randomBytes(18).toString('base64url')}`;
  const config = {
    server: { host: '127.0.0.1', port: 0 },
    data_dir: dataDir,
    providers: {
      upstream: { type: 'openai', base_url: `${mockUrl}/v1`, api_key: 'sk-bench-upstream' },
      ...(slowMockUrl
        ? {
            slow: {
              type: 'openai',
              base_url: `${slowMockUrl}/v1`,
              api_key: 'sk-bench-upstream',
              // Every slow stream holds its own upstream connection.
              max_connections: 10_000,
            },
          }
        : {}),
    },
    models: {
      [MODEL]: { targets: [{ provider: 'upstream', model: MODEL }] },
      [CACHED_MODEL]: { targets: [{ provider: 'upstream', model: MODEL }], cache: { enabled: true } },
      ...(slowMockUrl ? { [SLOW_MODEL]: { targets: [{ provider: 'slow', model: MODEL }] } } : {}),
    },
  };
  const configPath = join(dir, 'switchyard.yaml');
  writeFileSync(configPath, JSON.stringify(config, null, 2));
  // A virtual key, as a real client would use (falls back to the master key).
  let virtualKey = masterKey;
  let keyKind: 'virtual' | 'master' = 'master';
  try {
    const out = execFileSync(
      process.execPath,
      [join(ROOT, 'bin/switchyard.js'), 'keys', 'create', '--name', 'bench', '--config', configPath],
      {
        cwd: dir,
        env: childEnv({ SWITCHYARD_MASTER_KEY: masterKey }),
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    const created = JSON.parse(out) as { key?: unknown };
    if (typeof created.key === 'string' && created.key.length > 0) {
      virtualKey = created.key;
      keyKind = 'virtual';
    }
  } catch (error) {
    process.stderr.write(
      `bench: could not create a virtual key (${(error as Error).message}); using the master key\n`,
    );
  }
  return { dir, configPath, dataDir, masterKey, virtualKey, keyKind };
}

export function startGateway(
  g: GatewaySetup,
  logFile: string,
  nodeFlags: string[] = [],
  // Unpinned on a machine without that core (taskset would refuse it).
  cpu: number | string | undefined = cpuCount() > PROXY_CPU ? PROXY_CPU : undefined,
): Started {
  return startNode(
    [...PROXY_NODE_FLAGS, ...nodeFlags, join(ROOT, 'bin/switchyard.js'), 'start', '--config', g.configPath],
    {
      cpu,
      cwd: g.dir,
      env: childEnv({ PORT: '0', LOG_LEVEL: 'info', SWITCHYARD_MASTER_KEY: g.masterKey }),
      stdout: openSync(logFile, 'a'),
      readyOn: /listening on (http:\/\/\S+)/,
      readyTimeoutMs: 30_000,
    },
  );
}

export async function profileGateway(g: GatewaySetup, logFile: string): Promise<ProfileSummary | undefined> {
  const profDir = join(g.dir, 'cpuprof');
  mkdirSync(profDir);
  const gw = startGateway(g, logFile, ['--cpu-prof', '--cpu-prof-dir', profDir]);
  let window: { fromUs: number; toUs: number } | undefined;
  try {
    const url = await gw.ready;
    const t = chatTarget('profile', url, g.virtualKey);
    const pool = makePool(url, CONCURRENCY);
    log(`profile: warm-up ${WARMUP_S}s, then c=${CONCURRENCY} × ${PROFILE_S}s under --cpu-prof`);
    await closedLoop(pool, t, 8, WARMUP_S);
    const from = Number(process.hrtime.bigint() / 1000n);
    const r = await closedLoop(pool, t, CONCURRENCY, PROFILE_S);
    window = { fromUs: from, toUs: Number(process.hrtime.bigint() / 1000n) };
    await pool.close();
    log(`profile: ${Math.round(r.rps)} rps under the profiler, ${r.errors.total} errors`);
  } finally {
    await gw.stop(20_000);
  }
  const file = readdirSync(profDir).find((f) => f.endsWith('.cpuprofile'));
  if (!file) {
    log('profile: no .cpuprofile written');
    return undefined;
  }
  // Kept for a closer look (chrome://inspect, speedscope); only the loaded window is summarised.
  const kept = join(tmpdir(), `switchyard-bench-${process.pid}.cpuprofile`);
  copyFileSync(join(profDir, file), kept);
  log(`profile: ${kept}`);
  return summarizeProfile(kept, ROOT, 15, window);
}

/** Counters from the gateway itself, proving auth, metrics, logs and the ledger were on. */
export async function gatewayEvidence(
  url: string,
): Promise<{ metricsOk200: number; unauthorizedStatus: number }> {
  const res = await fetch(`${url}/metrics`);
  const text = await res.text();
  let metricsOk200 = 0;
  for (const line of text.split('\n')) {
    if (
      line.startsWith('switchyard_requests_total{') &&
      line.includes('route="/v1/chat/completions"') &&
      line.includes('status="200"')
    ) {
      metricsOk200 += Number(line.slice(line.lastIndexOf(' ') + 1));
    }
  }
  const noKey = await fetch(`${url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: jsonBody,
  });
  await noKey.arrayBuffer();
  return { metricsOk200, unauthorizedStatus: noKey.status };
}

export function countLedgerRows(dataDir: string): number | null {
  try {
    const db = new DatabaseSync(join(dataDir, 'switchyard.db'), { readOnly: true });
    const row = db.prepare('SELECT COUNT(*) AS n FROM usage_ledger').get() as { n: number } | undefined;
    db.close();
    return row ? Number(row.n) : null;
  } catch {
    return null;
  }
}

export function countLogLines(file: string): number {
  try {
    return readFileSync(file, 'utf8')
      .split('\n')
      .filter((l) => l.includes('"msg":"request"')).length;
  } catch {
    return 0;
  }
}
