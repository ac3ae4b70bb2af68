// Small SVG charts for the dashboard: sparklines, line/area charts over time
// and stacked bars. Everything is built with DOM calls (never markup from
// strings), so no value can become markup. Sizes come from the element's box.

const SVG = 'http://www.w3.org/2000/svg';
export const PALETTE = ['#7c83ff', '#22d3ee', '#34d399', '#fbbf24', '#f472b6', '#a78bfa', '#94a3b8'];

function el(name, attrs, parent) {
  const node = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (parent) parent.appendChild(node);
  return node;
}

function size(svg) {
  const box = svg.getBoundingClientRect();
  const width = Math.max(40, Math.round(box.width));
  const height = Math.max(20, Math.round(box.height));
  svg.setAttribute('viewBox', `0 0 ${width} ${height}`);
  svg.replaceChildren();
  return { width, height };
}

/** A "nice" upper bound for an axis: 1, 2 or 5 times a power of ten. */
function niceMax(value) {
  if (!(value > 0)) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 5, 10]) if (step * power >= value) return step * power;
  return 10 * power;
}

function gradient(svg, id, color) {
  const defs = el('defs', {}, svg);
  const g = el('linearGradient', { id, x1: 0, y1: 0, x2: 0, y2: 1 }, defs);
  el('stop', { offset: '0%', 'stop-color': color, 'stop-opacity': 0.45 }, g);
  el('stop', { offset: '100%', 'stop-color': color, 'stop-opacity': 0.02 }, g);
  return `url(#${id})`;
}

function pathOf(points) {
  let d = '';
  let open = false;
  for (const p of points) {
    if (p === null) {
      open = false;
      continue;
    }
    d += `${open ? 'L' : 'M'}${p[0].toFixed(1)},${p[1].toFixed(1)}`;
    open = true;
  }
  return d;
}

/** A sparkline of `values` (nulls are gaps), filled under the line. */
export function sparkline(svg, values, color = PALETTE[0]) {
  const { width, height } = size(svg);
  const present = values.filter((v) => v !== null && Number.isFinite(v));
  if (present.length < 2) return;
  const max = Math.max(...present) || 1;
  const step = width / (values.length - 1);
  const points = values.map((v, i) =>
    v === null || !Number.isFinite(v) ? null : [i * step, height - 2 - (v / max) * (height - 6)],
  );
  const line = pathOf(points);
  const first = points.find((p) => p !== null);
  const last = points.findLast((p) => p !== null);
  el(
    'path',
    { d: `${line}L${last[0]},${height}L${first[0]},${height}Z`, fill: gradient(svg, `${svg.id}-g`, color) },
    svg,
  );
  el('path', { d: line, fill: 'none', stroke: color, 'stroke-width': 1.5, 'stroke-linejoin': 'round' }, svg);
}

/**
 * Lines over time with axes: `series` is [{ name, color, values }], `times`
 * the x values (epoch ms); `format` labels the y axis.
 */
export function timeChart(svg, times, series, { format = (v) => String(v), area = false } = {}) {
  const { width, height } = size(svg);
  const left = 52;
  const bottom = 20;
  const plotW = width - left - 8;
  const plotH = height - bottom - 8;
  const all = series.flatMap((s) => s.values).filter((v) => v !== null && Number.isFinite(v));
  const max = niceMax(all.length ? Math.max(...all) : 0);
  for (let i = 0; i <= 4; i++) {
    const y = 8 + plotH - (plotH * i) / 4;
    el('line', { x1: left, x2: width - 8, y1: y, y2: y, stroke: '#2a3550', 'stroke-width': 1 }, svg);
    el('text', { x: left - 6, y: y + 3, 'text-anchor': 'end' }, svg).textContent = format((max * i) / 4);
  }
  if (times.length < 2) {
    el('text', { x: left + plotW / 2, y: 8 + plotH / 2, 'text-anchor': 'middle' }, svg).textContent =
      'collecting…';
    return;
  }
  const t0 = times[0];
  const span = times.at(-1) - t0 || 1;
  const x = (t) => left + ((t - t0) / span) * plotW;
  const y = (v) => 8 + plotH - (Math.min(v, max) / max) * plotH;
  for (const [i, t] of [t0, t0 + span / 2, t0 + span].entries()) {
    const label = el('text', { x: x(t), y: height - 4, 'text-anchor': ['start', 'middle', 'end'][i] }, svg);
    label.textContent = new Date(t).toLocaleTimeString([], {
      hour: '2-digit',
      minute: '2-digit',
      second: '2-digit',
    });
  }
  series.forEach((s, index) => {
    const points = s.values.map((v, i) => (v === null || !Number.isFinite(v) ? null : [x(times[i]), y(v)]));
    const line = pathOf(points);
    if (!line) return;
    if (area) {
      const first = points.find((p) => p !== null);
      const last = points.findLast((p) => p !== null);
      const fill = gradient(svg, `${svg.id}-g${index}`, s.color);
      el('path', { d: `${line}L${last[0]},${8 + plotH}L${first[0]},${8 + plotH}Z`, fill }, svg);
    }
    el(
      'path',
      { d: line, fill: 'none', stroke: s.color, 'stroke-width': 2, 'stroke-linejoin': 'round' },
      svg,
    );
  });
}

/** Stacked bars: `buckets` the x values (epoch ms), `series` [{ label, color, values }]. */
export function stackedBars(svg, buckets, series, { format = (v) => String(v), bucketMs = 60_000 } = {}) {
  const { width, height } = size(svg);
  const left = 60;
  const bottom = 20;
  const plotW = width - left - 8;
  const plotH = height - bottom - 8;
  const totals = buckets.map((_, i) => series.reduce((sum, s) => sum + (s.values[i] || 0), 0));
  const max = niceMax(Math.max(0, ...totals));
  for (let i = 0; i <= 4; i++) {
    const y = 8 + plotH - (plotH * i) / 4;
    el('line', { x1: left, x2: width - 8, y1: y, y2: y, stroke: '#2a3550', 'stroke-width': 1 }, svg);
    el('text', { x: left - 6, y: y + 3, 'text-anchor': 'end' }, svg).textContent = format((max * i) / 4);
  }
  const slot = plotW / Math.max(1, buckets.length);
  const barW = Math.max(1, slot * 0.72);
  buckets.forEach((_t, i) => {
    let base = 8 + plotH;
    series.forEach((s) => {
      const v = s.values[i] || 0;
      if (v <= 0) return;
      const h = (v / max) * plotH;
      const rect = el(
        'rect',
        {
          x: left + i * slot + (slot - barW) / 2,
          y: base - h,
          width: barW,
          height: h,
          fill: s.color,
          rx: 1.5,
        },
        svg,
      );
      el('title', {}, rect).textContent = `${s.label}: ${format(v)}`;
      base -= h;
    });
  });
  const long = bucketMs >= 86_400_000 / 2;
  const labelAt = (i, anchor) => {
    const text = el('text', { x: left + i * slot + slot / 2, y: height - 4, 'text-anchor': anchor }, svg);
    const d = new Date(buckets[i]);
    text.textContent = long
      ? d.toLocaleDateString([], { month: 'short', day: 'numeric' })
      : d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  };
  if (buckets.length > 0) {
    labelAt(0, 'start');
    labelAt(Math.floor(buckets.length / 2), 'middle');
    labelAt(buckets.length - 1, 'end');
  }
  if (totals.every((v) => v === 0)) {
    el('text', { x: left + plotW / 2, y: 8 + plotH / 2, 'text-anchor': 'middle' }, svg).textContent =
      'no priced spend in this range';
  }
}
