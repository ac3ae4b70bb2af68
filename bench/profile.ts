/**
 * Reads a V8 `.cpuprofile` (node --cpu-prof) and ranks self time by function and
 * by package/module, so the hot spots of the gateway can be seen at a glance.
 */
import { readFileSync } from 'node:fs';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
  columnNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  hitCount?: number;
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  samples?: number[];
  timeDeltas?: number[];
  startTime: number;
  endTime: number;
}

export interface HotSpot {
  name: string;
  where: string;
  selfMs: number;
  /** Share of non-idle sampled time. */
  pct: number;
  /** The caller that accounts for most of this self time (useful for native frames). */
  caller?: string;
}

export interface ProfileSummary {
  file: string;
  sampledMs: number;
  idleMs: number;
  functions: HotSpot[];
  modules: HotSpot[];
}

function shortUrl(url: string, root: string): string {
  let u = url.startsWith('file://') ? url.slice(7) : url;
  if (u.startsWith(root)) u = u.slice(root.length + 1);
  return u;
}

/** `node_modules/fastify/lib/x.js` → `fastify`; `src/server/app.ts` → `src/server/app.ts`. */
function moduleOf(where: string, name: string): string {
  if (where === '') return name.startsWith('(') ? name : '(native/builtin)';
  const nm = where.lastIndexOf('node_modules/');
  if (nm >= 0) {
    const rest = where.slice(nm + 13).split('/');
    return rest[0]?.startsWith('@') ? `${rest[0]}/${rest[1]}` : (rest[0] ?? where);
  }
  if (where.startsWith('node:')) return where;
  return where.replace(/:\d+$/, '');
}

/**
 * `window` (µs, CLOCK_MONOTONIC — the same clock as `process.hrtime`) keeps only the
 * samples taken under the measured load, leaving out startup and shutdown.
 */
export function summarizeProfile(
  file: string,
  root: string,
  top = 10,
  window?: { fromUs: number; toUs: number },
): ProfileSummary {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parentOf = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parentOf.set(c, n.id);
  const label = (cf: CallFrame): string =>
    `${cf.functionName || '(anonymous)'}${cf.url ? ` ${shortUrl(cf.url, root)}:${cf.lineNumber + 1}` : ''}`;
  const selfUs = new Map<number, number>();
  const samples = profile.samples ?? [];
  const deltas = profile.timeDeltas ?? [];
  if (samples.length > 0) {
    // timeDeltas[i] is the gap before sample i; attribute the following gap to it.
    let t = profile.startTime;
    for (let i = 0; i < samples.length; i++) {
      t += deltas[i] ?? 0;
      if (window && (t < window.fromUs || t > window.toUs)) continue;
      const id = samples[i] ?? 0;
      const dt = deltas[i + 1] ?? deltas[i] ?? 0;
      selfUs.set(id, (selfUs.get(id) ?? 0) + Math.max(0, dt));
    }
  } else {
    const total = profile.endTime - profile.startTime;
    const hits = profile.nodes.reduce((a, n) => a + (n.hitCount ?? 0), 0) || 1;
    for (const n of profile.nodes) selfUs.set(n.id, ((n.hitCount ?? 0) * total) / hits);
  }
  const fns = new Map<string, { name: string; where: string; us: number; callers: Map<string, number> }>();
  const mods = new Map<string, number>();
  let idleUs = 0;
  let busyUs = 0;
  for (const [id, us] of selfUs) {
    const node = byId.get(id);
    if (!node) continue;
    const cf = node.callFrame;
    const name = cf.functionName || '(anonymous)';
    if (name === '(idle)') {
      idleUs += us;
      continue;
    }
    busyUs += us;
    const where = cf.url ? `${shortUrl(cf.url, root)}:${cf.lineNumber + 1}` : '';
    const key = `${name}@${where}`;
    const f = fns.get(key) ?? { name, where, us: 0, callers: new Map<string, number>() };
    f.us += us;
    const parent = byId.get(parentOf.get(id) ?? -1);
    if (parent) {
      const p = label(parent.callFrame);
      f.callers.set(p, (f.callers.get(p) ?? 0) + us);
    }
    fns.set(key, f);
    const mod = moduleOf(where, name);
    mods.set(mod, (mods.get(mod) ?? 0) + us);
  }
  const pct = (us: number): number => Math.round((us / Math.max(busyUs, 1)) * 1000) / 10;
  const functions = [...fns.values()]
    .sort((a, b) => b.us - a.us)
    .slice(0, top)
    .map((f) => {
      const top = [...f.callers.entries()].sort((a, b) => b[1] - a[1])[0];
      return {
        name: f.name,
        where: f.where,
        selfMs: Math.round(f.us / 100) / 10,
        pct: pct(f.us),
        ...(top ? { caller: `${top[0]} (${Math.round((top[1] / f.us) * 100)}%)` } : {}),
      };
    });
  const modules = [...mods.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([m, us]) => ({ name: m, where: '', selfMs: Math.round(us / 100) / 10, pct: pct(us) }));
  return {
    file,
    sampledMs: Math.round(busyUs / 1000),
    idleMs: Math.round(idleUs / 1000),
    functions,
    modules,
  };
}
