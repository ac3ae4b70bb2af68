// The dashboard page: sign-in, live overview (polled every 1.5 s), spend
// charts and key management. Data is only ever put into the page as text
// (textContent, attributes), never as markup. The session lives in an
// HttpOnly cookie this script cannot read; it keeps only the session's CSRF
// token, in memory, and sends it on every change.
import { PALETTE, sparkline, stackedBars, timeChart } from './charts.js';

const POLL_MS = 1500;
const SLOW_POLL_MS = 5_000;
const $ = (id) => document.getElementById(id);

const state = {
  csrf: null,
  tiers: [],
  view: 'overview',
  timers: [],
  spendBy: 'model',
  keys: [],
  spendByKey: new Map(),
};

// --- formatting ---------------------------------------------------------------

const number = (v, digits = 1) => (v === null || v === undefined ? '–' : Number(v).toFixed(digits));
const percent = (v) =>
  v === null || v === undefined ? '–' : `${(v * 100).toFixed(v < 0.1 && v > 0 ? 1 : 0)}%`;
const millis = (v) =>
  v === null || v === undefined ? '–' : v >= 1000 ? `${(v / 1000).toFixed(2)} s` : `${Math.round(v)} ms`;
function usd(v) {
  if (v === null || v === undefined) return '–';
  if (v === 0) return '$0';
  if (v < 0.01) return `$${v.toFixed(4)}`;
  return `$${v.toFixed(2)}`;
}
const date = (iso) =>
  iso ? new Date(iso).toLocaleString([], { dateStyle: 'medium', timeStyle: 'short' }) : '–';

function node(tag, props = {}, children = []) {
  const element = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === 'text') element.textContent = v;
    else if (k === 'class') element.className = v;
    else if (k.startsWith('on')) element.addEventListener(k.slice(2), v);
    else element.setAttribute(k, v);
  }
  for (const child of children) if (child) element.appendChild(child);
  return element;
}

// --- API ----------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

async function api(method, path, body) {
  const headers = { accept: 'application/json' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (method !== 'GET' && state.csrf) headers['x-csrf-token'] = state.csrf;
  const response = await fetch(path, {
    method,
    headers,
    credentials: 'same-origin',
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = await response.json().catch(() => ({}));
  if (response.status === 401 && path !== '/dashboard/api/login') {
    showLogin('Your session has ended; sign in again.');
    throw new ApiError(401, 'signed out');
  }
  if (!response.ok) throw new ApiError(response.status, data?.error?.message ?? `HTTP ${response.status}`);
  return data;
}

// --- session ------------------------------------------------------------------

function stopPolling() {
  for (const timer of state.timers) clearInterval(timer);
  state.timers = [];
}

function showLogin(message) {
  stopPolling();
  state.csrf = null;
  for (const id of ['nav', 'session-bar', 'overview-view', 'keys-view']) $(id).hidden = true;
  $('login-view').hidden = false;
  const error = $('login-error');
  error.hidden = !message;
  error.textContent = message ?? '';
  $('master-key').focus();
}

function startSession(session) {
  state.csrf = session.csrf_token;
  state.tiers = session.tiers ?? [];
  const tierSelect = $('key-tier');
  tierSelect.replaceChildren(node('option', { value: '', text: 'none' }));
  for (const tier of state.tiers) tierSelect.appendChild(node('option', { value: tier, text: tier }));
  $('login-view').hidden = true;
  $('nav').hidden = false;
  $('session-bar').hidden = false;
  show(state.view);
  pollLive();
  pollSlow();
  state.timers.push(setInterval(pollLive, POLL_MS), setInterval(pollSlow, SLOW_POLL_MS));
}

$('login-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const input = $('master-key');
  $('login-submit').disabled = true;
  try {
    const session = await api('POST', '/dashboard/api/login', { master_key: input.value });
    input.value = '';
    startSession(session);
  } catch (error) {
    showLogin(error.status === 401 ? 'That is not the master key.' : error.message);
  } finally {
    $('login-submit').disabled = false;
  }
});

$('logout').addEventListener('click', async () => {
  await api('POST', '/dashboard/api/logout').catch(() => {});
  showLogin();
});

function show(view) {
  state.view = view;
  $('overview-view').hidden = view !== 'overview';
  $('keys-view').hidden = view !== 'keys';
  for (const tab of document.querySelectorAll('.tab'))
    tab.classList.toggle('active', tab.dataset.view === view);
  if (view === 'keys') loadKeys();
  else pollSlow();
}
for (const tab of document.querySelectorAll('.tab'))
  tab.addEventListener('click', () => show(tab.dataset.view));

// --- overview: live numbers ----------------------------------------------------

async function pollLive() {
  let live;
  try {
    live = await api('GET', '/dashboard/api/live');
  } catch {
    $('live-indicator').classList.add('stale');
    $('live-indicator').textContent = 'reconnecting';
    return;
  }
  $('live-indicator').classList.remove('stale');
  $('live-indicator').textContent = 'live';
  const c = live.current;
  $('stat-rps').textContent = number(c.rps, c.rps >= 100 ? 0 : 1);
  $('stat-rps-sub').textContent = `${c.in_flight} in flight · ${c.requests_total} total`;
  $('stat-latency').textContent = `${millis(c.p50_ms)} · ${millis(c.p95_ms)} · ${millis(c.p99_ms)}`;
  $('stat-errors').textContent = percent(c.error_rate);
  $('stat-errors-sub').textContent = `4xx ${percent(c.client_error_rate)}`;
  $('stat-ttft').textContent = `${millis(c.ttft_p50_ms)} · ${millis(c.ttft_p95_ms)}`;
  $('stat-cache').textContent = percent(c.cache_hit_rate);
  $('stat-spend').textContent = usd(c.spend_usd_per_min);
  $('stat-spend-sub').textContent =
    `${usd(c.spend_usd_total)} since start · ${number(c.tokens_per_s, 0)} tok/s`;
  $('card-errors').classList.toggle('alert', (c.error_rate ?? 0) > 0.05);

  const s = live.series;
  const pick = (k) => s.map((p) => p[k]);
  sparkline($('spark-rps'), pick('rps'), PALETTE[0]);
  sparkline($('spark-latency'), pick('p95_ms'), PALETTE[1]);
  sparkline($('spark-errors'), pick('error_rate'), '#f87171');
  sparkline($('spark-ttft'), pick('ttft_p50_ms'), PALETTE[2]);
  sparkline($('spark-cache'), pick('cache_hit_rate'), PALETTE[3]);
  sparkline($('spark-spend'), pick('spend_usd_per_min'), PALETTE[4]);
  const times = pick('t');
  timeChart($('chart-rps'), times, [{ name: 'req/s', color: PALETTE[0], values: pick('rps') }], {
    area: true,
    format: (v) => (v >= 10 ? v.toFixed(0) : v.toFixed(1)),
  });
  const latency = [
    { name: 'p50', color: PALETTE[2], values: pick('p50_ms') },
    { name: 'p95', color: PALETTE[3], values: pick('p95_ms') },
    { name: 'p99', color: PALETTE[4], values: pick('p99_ms') },
  ];
  timeChart($('chart-latency'), times, latency, { format: millis });
  legend(
    $('legend-latency'),
    latency.map((l) => ({ label: l.name, color: l.color })),
  );
}

function legend(container, items) {
  container.replaceChildren(
    ...items.map((item) => {
      const swatch = node('span', { class: 'swatch' });
      // Colours through the CSSOM (the page's CSP allows it, unlike style attributes).
      swatch.style.background = item.color;
      return node('span', {}, [swatch, document.createTextNode(item.label)]);
    }),
  );
}

// --- overview: slower data -------------------------------------------------------

async function pollSlow() {
  if (state.view !== 'overview' || state.csrf === null) return;
  await Promise.all([loadSpend(), loadTopKeys(), loadStatus()]).catch(() => {});
}

async function loadSpend() {
  const range = $('spend-range').value;
  const spend = await api(
    'GET',
    `/dashboard/api/spend?by=${encodeURIComponent(state.spendBy)}&range=${encodeURIComponent(range)}`,
  );
  const series = spend.series.map((s, i) => ({
    label: s.label,
    color: PALETTE[i % PALETTE.length],
    values: s.usd,
    total: s.total_usd,
  }));
  stackedBars($('chart-spend'), spend.buckets, series, { format: usd, bucketMs: spend.bucket_ms });
  legend(
    $('legend-spend'),
    series.map((s) => ({ label: `${s.label} ${usd(s.total)}`, color: s.color })),
  );
}
for (const button of $('spend-by').querySelectorAll('button')) {
  button.addEventListener('click', () => {
    state.spendBy = button.dataset.by;
    for (const b of $('spend-by').querySelectorAll('button')) b.classList.toggle('active', b === button);
    loadSpend().catch(() => {});
  });
}
$('spend-range').addEventListener('change', () => loadSpend().catch(() => {}));

function bars(container, rows, empty) {
  if (rows.length === 0) {
    container.replaceChildren(node('div', { class: 'empty', text: empty }));
    return;
  }
  const max = Math.max(...rows.map((r) => r.value)) || 1;
  container.replaceChildren(
    ...rows.map((row) => {
      const fill = node('div', { class: 'bar-fill' });
      fill.style.width = `${Math.max(1, (row.value / max) * 100)}%`;
      return node('div', { class: 'bar-row' }, [
        node('span', { class: 'bar-name', text: row.name, title: row.title ?? row.name }),
        node('div', { class: 'bar-track' }, [fill]),
        node('span', { class: 'bar-value', text: row.label }),
      ]);
    }),
  );
}

async function loadTopKeys() {
  const top = await api('GET', '/dashboard/api/top-keys?range=24h');
  state.spendByKey = new Map(top.data.map((row) => [row.key_id, row.cost_usd]));
  bars(
    $('top-keys'),
    top.data.map((row) => ({
      name: row.name,
      title: row.key_id,
      value: row.cost_usd,
      label: `${usd(row.cost_usd)} · ${row.requests} req`,
    })),
    'No spend in the last 24 hours.',
  );
}

const BREAKER_CLASS = {
  closed: 'good',
  half_open: 'warn',
  'half-open': 'warn',
  open: 'bad',
  isolated: 'bad',
};

async function loadStatus() {
  const status = await api('GET', '/dashboard/api/status');
  $('providers').replaceChildren(
    ...status.providers.map((p) => {
      const health = p.available === p.targets ? 'good' : p.available === 0 ? 'bad' : 'warn';
      return node('div', { class: 'provider' }, [
        node('span', { class: `dot ${health}` }),
        node('strong', { text: p.name }),
        node('span', { class: 'muted', text: `${p.available}/${p.targets} targets up` }),
      ]);
    }),
  );
  const breakerOf = new Map(status.breakers.map((b) => [b.id, b]));
  const rows = [];
  for (const model of status.models) {
    for (const target of model.targets) {
      const breaker = breakerOf.get(target.id);
      const state = breaker?.state ?? 'closed';
      rows.push(
        node('tr', {}, [
          node('td', {}, [node('code', { text: target.id })]),
          node('td', { text: target.provider }),
          node('td', {}, [
            node('span', { class: `pill ${BREAKER_CLASS[state] ?? 'warn'}`, text: state.replace('_', '-') }),
          ]),
          node('td', {
            text: target.active ? (target.available ? 'in rotation' : 'unavailable') : 'deactivated',
          }),
          node('td', { text: millis(target.latency_ewma_ms) }),
          node('td', { text: millis(target.ttft_ewma_ms) }),
        ]),
      );
    }
  }
  $('breakers').replaceChildren(...rows);
  bars(
    $('queues'),
    status.queues.map((q) => ({
      name: q.name,
      value: (q.queued ?? 0) + (q.active ?? 0),
      label: q.error ? 'unavailable' : `${q.queued} queued · ${q.active} running`,
    })),
    'No queues.',
  );
}

// --- keys ---------------------------------------------------------------------------

async function loadKeys() {
  const error = $('keys-error');
  try {
    const [keys] = await Promise.all([api('GET', '/dashboard/api/keys'), loadTopKeys().catch(() => {})]);
    state.keys = keys.data;
    error.hidden = true;
    renderKeys();
  } catch (e) {
    error.hidden = false;
    error.textContent = e.message;
  }
}
$('show-revoked').addEventListener('change', renderKeys);

function renderKeys() {
  const showRevoked = $('show-revoked').checked;
  const keys = state.keys
    .filter((k) => showRevoked || k.revoked_at === null)
    .sort((a, b) => b.created_at.localeCompare(a.created_at));
  if (keys.length === 0) {
    $('keys').replaceChildren(
      node('tr', {}, [node('td', { colspan: '9', class: 'empty', text: 'No keys yet.' })]),
    );
    return;
  }
  $('keys').replaceChildren(...keys.map(keyRow));
}

function keyRow(key) {
  const revoked = key.revoked_at !== null;
  const row = node('tr', { 'data-key-id': key.id, class: revoked ? 'revoked' : '' });
  const tier = node('select', { 'aria-label': `Tier of ${key.name}`, class: 'edit-tier' }, [
    node('option', { value: '', text: 'none' }),
  ]);
  for (const name of new Set([...state.tiers, ...(key.tier ? [key.tier] : [])]))
    tier.appendChild(node('option', { value: name, text: name }));
  tier.value = key.tier ?? '';
  const daily = node('input', {
    type: 'number',
    min: '0',
    step: '0.01',
    placeholder: '–',
    class: 'edit-daily',
    'aria-label': `Daily budget of ${key.name}`,
  });
  const monthly = node('input', {
    type: 'number',
    min: '0',
    step: '0.01',
    placeholder: '–',
    class: 'edit-monthly',
    'aria-label': `Monthly budget of ${key.name}`,
  });
  daily.value = key.budget?.daily_usd ?? '';
  monthly.value = key.budget?.monthly_usd ?? '';
  const actions = node('td');
  if (!revoked) {
    const save = node('button', { type: 'button', class: 'ghost save-key', text: 'Save' });
    save.addEventListener('click', () => saveKey(key, tier.value, daily.value, monthly.value, save));
    const revoke = node('button', { type: 'button', class: 'danger revoke-key', text: 'Revoke' });
    revoke.addEventListener('click', () => {
      // Two clicks: the first arms the button, the second revokes.
      if (revoke.dataset.armed !== 'true') {
        revoke.dataset.armed = 'true';
        revoke.textContent = 'Confirm revoke';
        return;
      }
      revokeKey(key, revoke);
    });
    actions.append(save, document.createTextNode(' '), revoke);
  }
  row.append(
    node('td', { text: key.name }),
    node('td', {}, [node('code', { text: key.id })]),
    node('td', {}, [node('code', { text: key.hint })]),
    node('td', {}, revoked ? [document.createTextNode(key.tier ?? 'none')] : [tier]),
    node(
      'td',
      {},
      revoked
        ? [
            document.createTextNode(
              `${usd(key.budget?.daily_usd ?? null)} · ${usd(key.budget?.monthly_usd ?? null)}`,
            ),
          ]
        : [daily, document.createTextNode(' · '), monthly],
    ),
    node('td', { text: usd(state.spendByKey.get(key.id) ?? 0) }),
    node('td', { text: date(key.created_at) }),
    node('td', {}, [
      node('span', {
        class: `pill ${revoked ? 'bad' : 'good'} key-status`,
        text: revoked ? 'revoked' : 'active',
      }),
    ]),
    actions,
  );
  return row;
}

function budgetOf(daily, monthly, previous) {
  const budget = { ...(previous ?? {}) };
  delete budget.daily_usd;
  delete budget.monthly_usd;
  if (daily !== '') budget.daily_usd = Number(daily);
  if (monthly !== '') budget.monthly_usd = Number(monthly);
  return Object.keys(budget).length === 0 ? null : budget;
}

async function saveKey(key, tier, daily, monthly, button) {
  button.disabled = true;
  try {
    await api('PATCH', `/dashboard/api/keys/${encodeURIComponent(key.id)}`, {
      tier: tier === '' ? null : tier,
      budget: budgetOf(daily, monthly, key.budget),
    });
    await loadKeys();
  } catch (e) {
    $('keys-error').hidden = false;
    $('keys-error').textContent = e.message;
    button.disabled = false;
  }
}

async function revokeKey(key, button) {
  button.disabled = true;
  try {
    await api('DELETE', `/dashboard/api/keys/${encodeURIComponent(key.id)}`);
    await loadKeys();
  } catch (e) {
    $('keys-error').hidden = false;
    $('keys-error').textContent = e.message;
    button.disabled = false;
  }
}

$('create-key-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const error = $('create-error');
  const body = { name: $('key-name').value.trim() };
  if ($('key-tier').value !== '') body.tier = $('key-tier').value;
  const budget = budgetOf($('key-daily').value, $('key-monthly').value, null);
  if (budget !== null) body.budget = budget;
  $('create-key').disabled = true;
  try {
    const created = await api('POST', '/dashboard/api/keys', body);
    error.hidden = true;
    $('create-key-form').reset();
    $('new-key-secret').textContent = created.key;
    $('new-key').hidden = false;
    await loadKeys();
  } catch (e) {
    error.hidden = false;
    error.textContent = e.message;
  } finally {
    $('create-key').disabled = false;
  }
});

$('copy-secret').addEventListener('click', () =>
  navigator.clipboard?.writeText($('new-key-secret').textContent),
);
$('dismiss-secret').addEventListener('click', () => {
  // The secret leaves the page: it is never shown again.
  $('new-key-secret').textContent = '';
  $('new-key').hidden = true;
});

// --- start ----------------------------------------------------------------------------

api('GET', '/dashboard/api/session')
  .then(startSession)
  .catch(() => {});
