/**
 * The dashboard's HTTP side, without a browser: the page and assets are
 * served locally with a strict CSP; every data endpoint refuses a request
 * without a session, or with a virtual key, and takes the master key bearer;
 * sign-in sets an HttpOnly SameSite=Strict cookie that holds no key; changes
 * made with the cookie need the session's CSRF token; sign-out ends the
 * session; live numbers count model traffic only; spend over time and top
 * keys come from the ledger on SQLite and PostgreSQL.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { registerSecret, startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { createPostgresDatabase, testPostgresUrl } from '../helpers/services.ts';

const DATA_ENDPOINTS = [
  '/dashboard/api/session',
  '/dashboard/api/live',
  '/dashboard/api/status',
  '/dashboard/api/spend?by=model&range=1h',
  '/dashboard/api/top-keys?range=24h',
  '/dashboard/api/keys',
];

const CONFIG = {
  providers: { mock: { type: 'mock' } },
  models: {
    mock: { targets: [{ provider: 'mock', model: 'mock-1' }] },
    other: { targets: [{ provider: 'mock', model: 'mock-2' }] },
  },
  // 1,000 micro-dollars a token: "ping" with max_tokens 1 (5 tokens) costs $0.005.
  pricing: { 'mock-1': { input: 1_000, output: 1_000 }, 'mock-2': { input: 2_000, output: 2_000 } },
};

async function signIn(gw: TestGateway): Promise<{ cookie: string; csrf: string; setCookie: string }> {
  const res = await fetch(`${gw.url}/dashboard/api/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ master_key: gw.masterKey }),
  });
  assert.equal(res.status, 200, await res.clone().text());
  const setCookie = res.headers.get('set-cookie') ?? '';
  const body = (await res.json()) as { csrf_token: string };
  return { cookie: setCookie.split(';')[0]!, csrf: body.csrf_token, setCookie };
}

async function chat(gw: TestGateway, key: string, model = 'mock'): Promise<number> {
  const res = await fetch(`${gw.baseUrl}/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model, max_tokens: 1, messages: [{ role: 'user', content: 'ping' }] }),
  });
  await res.arrayBuffer();
  return res.status;
}

describe('dashboard access control', () => {
  let gw: TestGateway;
  let virtualKey: string;
  before(async () => {
    gw = await startTestGateway({ config: CONFIG });
    const res = await fetch(`${gw.url}/admin/keys`, {
      method: 'POST',
      headers: { authorization: `Bearer ${gw.masterKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'app' }),
    });
    virtualKey = ((await res.json()) as { key: string }).key;
    registerSecret(virtualKey);
  });
  after(() => gw.close());

  test('the page and its assets are served locally, with a CSP that allows this origin only', async () => {
    const page = await fetch(`${gw.url}/dashboard`);
    assert.equal(page.status, 200);
    assert.match(page.headers.get('content-type') ?? '', /^text\/html/);
    const csp = page.headers.get('content-security-policy') ?? '';
    assert.match(csp, /script-src 'self'/);
    assert.match(csp, /frame-ancestors 'none'/);
    assert.equal(page.headers.get('x-frame-options'), 'DENY');
    const html = await page.text();
    // Every script and stylesheet is the gateway's own: no CDN, no other host.
    const sources = [...html.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]!);
    assert.ok(sources.length >= 3);
    for (const source of sources) assert.match(source, /^\/dashboard\/assets\/[a-z-]+\.[a-z]+$/);
    for (const source of sources) {
      const asset = await fetch(`${gw.url}${source}`);
      assert.equal(asset.status, 200, source);
      const text = await asset.text();
      assert.doesNotMatch(text, /https?:\/\/(?!www\.w3\.org)/, `${source} reaches another host`);
    }
    const script = await fetch(`${gw.url}/dashboard/assets/app.js`);
    assert.match(script.headers.get('content-type') ?? '', /^text\/javascript/);
    const etag = script.headers.get('etag')!;
    const again = await fetch(`${gw.url}/dashboard/assets/app.js`, { headers: { 'if-none-match': etag } });
    assert.equal(again.status, 304);
    for (const path of [
      '/dashboard/assets/nope.js',
      '/dashboard/assets/..%2Fsessions.ts',
      '/dashboard/assets/index.html',
    ]) {
      assert.equal((await fetch(`${gw.url}${path}`)).status, 404, path);
    }
  });

  test('data endpoints refuse no credential (401) and a virtual key (403), and take the master key bearer', async () => {
    for (const path of DATA_ENDPOINTS) {
      const none = await fetch(`${gw.url}${path}`);
      assert.equal(none.status, 401, path);
      assert.equal(((await none.json()) as { error: { type: string } }).error.type, 'authentication_error');
      const virtual = await fetch(`${gw.url}${path}`, { headers: { authorization: `Bearer ${virtualKey}` } });
      assert.equal(virtual.status, 403, path);
      // A virtual key with a valid session cookie is still refused: the explicit credential decides.
      const master = await fetch(`${gw.url}${path}`, {
        headers: { authorization: `Bearer ${gw.masterKey}` },
      });
      assert.equal(master.status, 200, path);
      assert.equal(master.headers.get('cache-control'), 'no-store');
    }
    const forged = await fetch(`${gw.url}/dashboard/api/live`, {
      headers: { cookie: 'switchyard_dashboard=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' },
    });
    assert.equal(forged.status, 401);
  });

  test('sign-in refuses a wrong or virtual key, and sets an HttpOnly SameSite=Strict cookie holding no key', async () => {
    for (const wrong of ['sk-sy-master-wrong-wrong-wrong', virtualKey]) {
      const res = await fetch(`${gw.url}/dashboard/api/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ master_key: wrong }),
      });
      assert.equal(res.status, 401);
      assert.equal(res.headers.get('set-cookie'), null);
    }
    const bad = await fetch(`${gw.url}/dashboard/api/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ key: gw.masterKey }),
    });
    assert.equal(bad.status, 400);

    const { cookie, csrf, setCookie } = await signIn(gw);
    assert.match(setCookie, /^switchyard_dashboard=[A-Za-z0-9_-]{43}; /);
    for (const flag of ['HttpOnly', 'SameSite=Strict', 'Path=/dashboard', 'Max-Age=28800']) {
      assert.ok(setCookie.split('; ').includes(flag), `${flag} in ${setCookie}`);
    }
    assert.ok(!setCookie.includes(gw.masterKey));
    assert.ok(!setCookie.includes(csrf));
    const live = await fetch(`${gw.url}/dashboard/api/live`, { headers: { cookie } });
    assert.equal(live.status, 200);
  });

  test('changes made with the session cookie need its CSRF token; sign-out ends the session', async () => {
    const { cookie, csrf } = await signIn(gw);
    const create = (headers: Record<string, string>) =>
      fetch(`${gw.url}/dashboard/api/keys`, {
        method: 'POST',
        headers: { cookie, 'content-type': 'application/json', ...headers },
        body: JSON.stringify({ name: 'from-the-dashboard', tier: 'pro', budget: { daily_usd: 5 } }),
      });
    assert.equal((await create({})).status, 403);
    assert.equal((await create({ 'x-csrf-token': `${csrf.slice(0, -1)}x` })).status, 403);
    assert.equal((await create({ 'x-csrf-token': csrf, 'sec-fetch-site': 'cross-site' })).status, 403);
    const created = await create({ 'x-csrf-token': csrf });
    assert.equal(created.status, 201);
    const key = (await created.json()) as {
      id: string;
      key: string;
      tier: string;
      budget: { daily_usd: number };
    };
    registerSecret(key.key);
    assert.equal(key.tier, 'pro');
    assert.equal(key.budget.daily_usd, 5);
    assert.equal(await chat(gw, key.key), 200);

    // Invalid input gets the admin API's own 400.
    const invalid = await fetch(`${gw.url}/dashboard/api/keys/${key.id}`, {
      method: 'PATCH',
      headers: { cookie, 'content-type': 'application/json', 'x-csrf-token': csrf },
      body: JSON.stringify({ budget: { daily_usd: -1 } }),
    });
    assert.equal(invalid.status, 400);
    const patched = await fetch(`${gw.url}/dashboard/api/keys/${key.id}`, {
      method: 'PATCH',
      headers: { cookie, 'content-type': 'application/json', 'x-csrf-token': csrf },
      body: JSON.stringify({ tier: 'enterprise', budget: { monthly_usd: 50 } }),
    });
    assert.equal(patched.status, 200);
    assert.deepEqual(((await patched.json()) as { budget: unknown }).budget, { monthly_usd: 50 });

    // The list never carries a secret.
    const list = await fetch(`${gw.url}/dashboard/api/keys`, { headers: { cookie } });
    assert.ok(!(await list.text()).includes(key.key));

    const revokeWithout = await fetch(`${gw.url}/dashboard/api/keys/${key.id}`, {
      method: 'DELETE',
      headers: { cookie },
    });
    assert.equal(revokeWithout.status, 403);
    assert.equal(await chat(gw, key.key), 200);
    const revoked = await fetch(`${gw.url}/dashboard/api/keys/${key.id}`, {
      method: 'DELETE',
      headers: { cookie, 'x-csrf-token': csrf },
    });
    assert.equal(revoked.status, 200);
    assert.equal(await chat(gw, key.key), 401);

    assert.equal(
      (await fetch(`${gw.url}/dashboard/api/logout`, { method: 'POST', headers: { cookie } })).status,
      403,
    );
    const out = await fetch(`${gw.url}/dashboard/api/logout`, {
      method: 'POST',
      headers: { cookie, 'x-csrf-token': csrf },
    });
    assert.equal(out.status, 200);
    assert.match(out.headers.get('set-cookie') ?? '', /^switchyard_dashboard=; .*Max-Age=0/);
    assert.equal((await fetch(`${gw.url}/dashboard/api/live`, { headers: { cookie } })).status, 401);
  });

  test('live numbers count model traffic only, not the dashboard polling itself', async () => {
    const { cookie } = await signIn(gw);
    const live = async () => {
      const res = await fetch(`${gw.url}/dashboard/api/live`, { headers: { cookie } });
      const body = (await res.json()) as { at: number; current: { requests_total: number } };
      return { at: body.at, total: body.current.requests_total };
    };
    // The view samples the registry once a second at most: poll until a
    // sample taken after `since` is served.
    const sampleAfter = async (since: number) => {
      for (;;) {
        const sample = await live();
        if (sample.at > since) return sample.total;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    };
    const read = async () => (await live()).total;
    const before = await sampleAfter(Date.now());
    for (let i = 0; i < 5; i++) assert.equal(await chat(gw, gw.masterKey), 200);
    assert.equal(await chat(gw, 'sk-sy-not-a-key-at-all-xxxxxxxx'), 401);
    assert.equal(await sampleAfter(Date.now()), before + 6);
    // Polls (which are requests too) add nothing.
    for (let i = 0; i < 5; i++) assert.equal(await read(), before + 6);
  });
});

describe('dashboard off', () => {
  test('`dashboard.enabled: false` serves no page and no endpoint', async () => {
    const gw = await startTestGateway({ config: { ...CONFIG, dashboard: { enabled: false } } });
    try {
      for (const path of ['/dashboard', '/dashboard/assets/app.js', '/dashboard/api/live']) {
        const res = await fetch(`${gw.url}${path}`, { headers: { authorization: `Bearer ${gw.masterKey}` } });
        assert.equal(res.status, 404, path);
      }
    } finally {
      await gw.close();
    }
  });

  test('`dashboard.secure_cookie: true` marks the cookie Secure', async () => {
    const gw = await startTestGateway({ config: { ...CONFIG, dashboard: { secure_cookie: true } } });
    try {
      assert.ok((await signIn(gw)).setCookie.split('; ').includes('Secure'));
    } finally {
      await gw.close();
    }
  });
});

for (const dialect of ['sqlite', 'postgres'] as const) {
  describe(`dashboard spend from the ledger on ${dialect}`, () => {
    let gw: TestGateway;
    const keys: Array<{ id: string; key: string }> = [];
    before(async () => {
      gw = await startTestGateway({
        ...(dialect === 'postgres' ? { databaseUrl: await createPostgresDatabase(testPostgresUrl()) } : {}),
        config: CONFIG,
      });
      for (let i = 0; i < 2; i++) {
        const res = await fetch(`${gw.url}/admin/keys`, {
          method: 'POST',
          headers: { authorization: `Bearer ${gw.masterKey}`, 'content-type': 'application/json' },
          body: JSON.stringify({ name: `spender-${i}` }),
        });
        const key = (await res.json()) as { id: string; key: string };
        registerSecret(key.key);
        keys.push(key);
      }
      // Key 0: three requests to `mock` ($0.015); key 1: one to `other` ($0.010).
      for (let i = 0; i < 3; i++) assert.equal(await chat(gw, keys[0]!.key, 'mock'), 200);
      assert.equal(await chat(gw, keys[1]!.key, 'other'), 200);
      await gw.gateway.context.ledger.flush();
    });
    after(() => gw.close());

    const get = async (path: string) => {
      const res = await fetch(`${gw.url}${path}`, { headers: { authorization: `Bearer ${gw.masterKey}` } });
      assert.equal(res.status, 200, await res.clone().text());
      return res.json();
    };

    test('spend over time by model and by key, in the current bucket, biggest first', async () => {
      const byModel = (await get('/dashboard/api/spend?by=model&range=1h')) as {
        buckets: number[];
        bucket_ms: number;
        series: Array<{ group: string; total_usd: number; usd: number[] }>;
      };
      assert.equal(byModel.bucket_ms, 60_000);
      assert.equal(byModel.buckets.length, 60);
      assert.deepEqual(
        byModel.series.map((s) => [s.group, s.total_usd]),
        [
          ['mock', 0.015],
          ['other', 0.01],
        ],
      );
      // All of it is recent: in the last buckets, none in the first.
      assert.equal(byModel.series[0]!.usd[0], 0);
      assert.equal(
        byModel.series[0]!.usd.slice(-2).reduce((a, b) => a + b, 0),
        0.015,
      );

      const byKey = (await get('/dashboard/api/spend?by=key&range=24h')) as {
        series: Array<{ group: string; label: string; total_usd: number }>;
      };
      assert.deepEqual(
        byKey.series.map((s) => [s.group, s.label, s.total_usd]),
        [
          [keys[0]!.id, 'spender-0', 0.015],
          [keys[1]!.id, 'spender-1', 0.01],
        ],
      );
      const byTeam = (await get('/dashboard/api/spend?by=team&range=7d')) as {
        series: Array<{ group: string; total_usd: number }>;
      };
      assert.deepEqual(
        byTeam.series.map((s) => [s.group, s.total_usd]),
        [['none', 0.025]],
      );
    });

    test('top keys by spend, with their names and request counts', async () => {
      const top = (await get('/dashboard/api/top-keys?range=24h')) as {
        data: Array<{ key_id: string; name: string; requests: number; cost_usd: number }>;
      };
      assert.deepEqual(
        top.data.map((k) => [k.name, k.requests, k.cost_usd]),
        [
          ['spender-0', 3, 0.015],
          ['spender-1', 1, 0.01],
        ],
      );
    });

    test('bad parameters are refused with 400 naming them', async () => {
      for (const [query, param] of [
        ['by=user', 'by'],
        ['range=2y', 'range'],
      ] as const) {
        const res = await fetch(`${gw.url}/dashboard/api/spend?${query}`, {
          headers: { authorization: `Bearer ${gw.masterKey}` },
        });
        assert.equal(res.status, 400);
        assert.equal(((await res.json()) as { error: { param: string } }).error.param, param);
      }
    });
  });
}
