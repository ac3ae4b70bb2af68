/**
 * Child processes for the benchmark (pinned with taskset when available) and the
 * /proc readings: CPU time, peak RSS, per-core busy time.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';

export const CLK_TCK = ((): number => {
  try {
    const n = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
    return Number.isFinite(n) && n > 0 ? n : 100;
  } catch {
    return 100;
  }
})();

export const TASKSET = ((): boolean => {
  try {
    execFileSync('taskset', ['-V'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

export function cpuCount(): number {
  try {
    return Number(execFileSync('nproc', { encoding: 'utf8' }).trim()) || 1;
  } catch {
    return 1;
  }
}

/** Pins every thread of this process to `cpu`. */
export function pinSelf(cpu: number): boolean {
  if (!TASKSET) return false;
  try {
    execFileSync('taskset', ['-a', '-p', '-c', String(cpu), String(process.pid)], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

const children = new Set<ChildProcess>();

/** Stops every child still running (by its own pid), e.g. on an exception. */
export function killAll(): void {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
  children.clear();
}

export interface Started {
  child: ChildProcess;
  pid: number;
  stderr(): string;
  /** Resolves with the first stdout line or stderr match, as asked for. */
  ready: Promise<string>;
  stop(timeoutMs?: number): Promise<void>;
}

export interface StartOptions {
  /** CPU (or list, e.g. "0,1") to pin to (taskset -c), if taskset exists. */
  cpu?: number | string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Where stdout goes: 'pipe' (readiness from its first line) or a file descriptor. */
  stdout: 'pipe' | number;
  /** With stdout not piped: readiness is the first match of this on stderr. */
  readyOn?: RegExp;
  readyTimeoutMs?: number;
}

/** Starts `node <args>` (the same Node as this process), pinned when possible. */
export function startNode(args: string[], options: StartOptions): Started {
  const cmd = TASKSET && options.cpu !== undefined ? 'taskset' : process.execPath;
  const argv =
    TASKSET && options.cpu !== undefined ? ['-c', String(options.cpu), process.execPath, ...args] : args;
  // taskset execs the command, so the pid is node's own.
  const child = spawn(cmd, argv, {
    cwd: options.cwd,
    env: options.env ?? process.env,
    stdio: ['ignore', options.stdout, 'pipe'],
  });
  children.add(child);
  let err = '';
  let out = '';
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const ready = new Promise<string>((resolve, reject) => {
    const timer = setTimeout(
      () =>
        reject(
          new Error(`not ready after ${options.readyTimeoutMs ?? 15_000} ms: ${args.join(' ')}\n${err}`),
        ),
      options.readyTimeoutMs ?? 15_000,
    );
    const done = (v: string): void => {
      clearTimeout(timer);
      resolve(v);
    };
    child.stderr?.on('data', (d: Buffer) => {
      if (err.length < 100_000) err += d.toString();
      const m = options.readyOn?.exec(err);
      if (m) done(m[1] ?? m[0]);
    });
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const nl = out.indexOf('\n');
      if (nl >= 0) done(out.slice(0, nl));
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`exited early (${code ?? signal}): ${args.join(' ')}\n${err}`));
    });
    child.once('error', reject);
  });
  ready.catch(() => undefined);
  return {
    child,
    pid: child.pid ?? -1,
    stderr: () => err,
    ready,
    async stop(timeoutMs = 10_000) {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
        await exited;
        clearTimeout(timer);
      }
      children.delete(child);
    },
  };
}

/** utime + stime of a process, in µs. */
export function cpuTimeUs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // After "pid (comm) ": state is field 3, utime 14, stime 15 (1-based) → index 11, 12 here.
  const ticks = Number(fields[11]) + Number(fields[12]);
  return (ticks * 1e6) / CLK_TCK;
}

/** A line of /proc/<pid>/status in kB (VmHWM, VmRSS). */
export function statusKb(pid: number, field: 'VmHWM' | 'VmRSS'): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : Number.NaN;
}

/** Busy and total jiffies per core, from /proc/stat. */
export function coreTimes(): Map<string, { busy: number; total: number }> {
  const out = new Map<string, { busy: number; total: number }>();
  for (const line of readFileSync('/proc/stat', 'utf8').split('\n')) {
    const m = /^(cpu\d+)\s+(.*)$/.exec(line);
    if (!m) continue;
    const v = (m[2] ?? '').split(/\s+/).map(Number);
    const total = v.slice(0, 8).reduce((a, b) => a + b, 0);
    const idle = (v[3] ?? 0) + (v[4] ?? 0);
    out.set(m[1] ?? '', { busy: total - idle, total });
  }
  return out;
}

/** Busy fraction per core between two `coreTimes()` readings. */
export function coreBusy(
  before: Map<string, { busy: number; total: number }>,
  after: Map<string, { busy: number; total: number }>,
): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [cpu, a] of after) {
    const b = before.get(cpu);
    if (!b) continue;
    const total = a.total - b.total;
    out[cpu] = total > 0 ? Math.round(((a.busy - b.busy) / total) * 1000) / 1000 : 0;
  }
  return out;
}
