// Open-loop latency of several proxies measured side by side in one load: each gets
// RATE requests a second (compare.sh's rate test body), and within each tick the
// targets are sent one after another, RATE x targets apart, in an order that rotates
// every tick. Every target so sees the same machine state over the same seconds, which
// sequential rounds on this VM do not give (its speed drifts by more than most effects
// between rounds). Run by bench/paired-ab.sh from the harness's work directory (for its undici).
//   node paired-rate.mjs name=port ...    env: RATE (200), DUR (10 s), KEY (bearer)
// Prints per target p50 and p90 (ms, the first tenth left out as warm-up) and, after the
// first target, its p50 over the first one's.
import { Pool } from 'undici';

const RATE = Number(process.env.RATE || 200);
const DUR = Number(process.env.DUR || 10);
const KEY = process.env.KEY || 'sk-compare-master-0123456789';
const targets = process.argv.slice(2).map((arg) => {
  const [name, port] = arg.split('=');
  return {
    name,
    pool: new Pool(`http://127.0.0.1:${Number(port)}`, { connections: 64, pipelining: 1 }),
    lat: [],
  };
});
if (targets.length === 0) {
  console.error('usage: node paired-rate.mjs name=port ...');
  process.exit(2);
}
const messages = [
  { role: 'system', content: 'You are a helpful assistant.' },
  { role: 'user', content: 'Say this is a benchmark test, in one short paragraph.' },
];
const BODY = JSON.stringify({ model: 'gpt-4o-mini', messages, max_tokens: 64, temperature: 0 });
const HEADERS = { 'content-type': 'application/json', authorization: `Bearer ${KEY}` };
const ticks = Math.round(RATE * DUR);
const sends = ticks * targets.length;
const gap = 1000 / RATE;
const stagger = gap / targets.length;

const t0 = performance.now() + 20;
await new Promise((resolve) => {
  let sent = 0;
  let done = 0;
  const fire = (target, tick, due) => {
    target.pool
      .request({ path: '/v1/chat/completions', method: 'POST', headers: HEADERS, body: BODY })
      .then(async (res) => {
        await res.body.dump();
        target.lat[tick] = res.statusCode === 200 ? performance.now() - due : Number.NaN;
      })
      .catch(() => {
        target.lat[tick] = Number.NaN;
      })
      .finally(() => {
        if (++done === sends) resolve();
      });
  };
  const step = () => {
    const now = performance.now();
    while (sent < sends) {
      const tick = Math.floor(sent / targets.length);
      const slot = sent % targets.length;
      const due = t0 + tick * gap + slot * stagger;
      if (due > now) break;
      fire(targets[(slot + tick) % targets.length], tick, due);
      sent++;
    }
    if (sent < sends) setTimeout(step, 0);
  };
  setTimeout(step, 5);
});

// NaN when no request of the target was answered (printed as such, not a crash).
const pct = (values, p) => {
  const sorted = values.filter(Number.isFinite).sort((a, b) => a - b);
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
};
const warm = Math.floor(ticks / 10);
const firstP50 = pct(targets[0].lat.slice(warm), 50);
for (const target of targets) {
  const lat = target.lat.slice(warm);
  const failed = lat.filter((x) => !Number.isFinite(x)).length;
  const over =
    target === targets[0] ? '' : `  over ${targets[0].name} ${(pct(lat, 50) - firstP50).toFixed(3)}`;
  console.log(
    `${target.name.padEnd(10)} p50 ${pct(lat, 50).toFixed(3)}  p90 ${pct(lat, 90).toFixed(3)}${over}${failed ? `  failed ${failed}` : ''}`,
  );
  await target.pool.close();
}
