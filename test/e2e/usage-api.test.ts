/**
 * GET /admin/usage over the ledger, on SQLite and PostgreSQL: attempts grouped
 * by key, model, provider and UTC day over a range, costs in USD from integer
 * micro-dollars (unpriced attempts counted apart), cursor pages that cover
 * every group once, CSV export, bad input refused with 400, master key only.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { createPostgresDatabase, testPostgresUrl } from '../helpers/services.ts';

for (const dialect of ['sqlite', 'postgres'] as const) {
  describe(`GET /admin/usage on ${dialect}`, () => {
    let gw: TestGateway;
    const keys: Array<{ id: string; key: string }> = [];
    before(async () => {
      gw = await startTestGateway({
        ...(dialect === 'postgres' ? { databaseUrl: await createPostgresDatabase(testPostgresUrl()) } : {}),
        config: {
          providers: { mock: { type: 'mock' } },
          models: {
            mock: { targets: [{ provider: 'mock', model: 'mock-1' }] },
            unpriced: { targets: [{ provider: 'mock', model: 'house-model' }] },
          },
          // 1,000 micro-dollars a token: "ping" with max_tokens 1 (5 tokens) costs $0.005.
          pricing: { 'mock-1': { input: 1_000, output: 1_000 } },
        },
      });
      for (let i = 0; i < 3; i++) {
        const res = await admin(`/admin/keys`, { method: 'POST', body: JSON.stringify({ name: `k${i}` }) });
        keys.push((await res.json()) as { id: string; key: string });
      }
      // Key i sends i + 1 priced requests; key 0 also one to the unpriced model.
      for (const [i, { key }] of keys.entries()) {
        for (let n = 0; n <= i; n++) assert.equal(await chat(key, 'mock'), 200);
      }
      assert.equal(await chat(keys[0]!.key, 'unpriced'), 200);
      await gw.gateway.context.ledger.flush();
    });
    after(() => gw.close());

    const admin = (path: string, init: RequestInit = {}, token = gw.masterKey) =>
      fetch(`${gw.url}${path}`, {
        ...init,
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      });
    const chat = async (key: string, model: string) => {
      const res = await fetch(`${gw.baseUrl}/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model, max_tokens: 1, messages: [{ role: 'user', content: 'ping' }] }),
      });
      await res.arrayBuffer();
      return res.status;
    };
    const usage = async (query: string) => {
      const res = await admin(`/admin/usage?${query}`);
      assert.equal(res.status, 200, await res.clone().text());
      return (await res.json()) as {
        data: Array<Record<string, string | number>>;
        next_cursor: string | null;
      };
    };

    test('by key: requests, tokens and cost per key; unpriced attempts apart, not free', async () => {
      const { data } = await usage('group_by=key');
      const byKey = new Map(data.map((row) => [row['key_id'], row]));
      assert.deepEqual(
        keys.map((k) => [byKey.get(k.id)?.['requests'], byKey.get(k.id)?.['cost_usd']]),
        [
          [2, '0.005000'],
          [2, '0.010000'],
          [3, '0.015000'],
        ],
      );
      const first = byKey.get(keys[0]!.id)!;
      assert.equal(first['unpriced_attempts'], 1);
      assert.equal(first['prompt_tokens'], 8);
      assert.equal(first['completion_tokens'], 2);
    });

    test('by model, provider and day', async () => {
      const byModel = (await usage('group_by=model')).data;
      assert.deepEqual(
        byModel.map((row) => [row['model'], row['attempts'], row['cost_usd']]),
        [
          ['mock', 6, '0.030000'],
          ['unpriced', 1, '0.000000'],
        ],
      );
      assert.deepEqual(
        (await usage('group_by=provider')).data.map((row) => [row['provider'], row['attempts']]),
        [['mock', 7]],
      );
      const today = new Date().toISOString().slice(0, 10);
      assert.deepEqual(
        (await usage('group_by=day')).data.map((row) => [row['day'], row['attempts']]),
        [[today, 7]],
      );
    });

    test('the range bounds the rows: nothing before from, nothing at or after to', async () => {
      assert.deepEqual((await usage(`group_by=key&to=${Date.now() - 3_600_000}`)).data, []);
      assert.deepEqual(
        (
          await usage(
            `group_by=key&from=${new Date(Date.now() + 60_000).toISOString()}&to=${Date.now() + 120_000}`,
          )
        ).data,
        [],
      );
    });

    test('cursor pages cover every group exactly once', async () => {
      const seen: unknown[] = [];
      let cursor: string | null = null;
      for (let page = 0; page < 10; page++) {
        const body: { data: Array<Record<string, string | number>>; next_cursor: string | null } =
          await usage(`group_by=key&limit=1${cursor === null ? '' : `&cursor=${cursor}`}`);
        seen.push(...body.data.map((row) => row['key_id']));
        cursor = body.next_cursor;
        if (cursor === null) break;
      }
      assert.deepEqual(seen, [...keys.map((k) => k.id)].sort());
    });

    test('CSV export', async () => {
      const res = await admin('/admin/usage?group_by=model&format=csv');
      assert.equal(res.status, 200);
      assert.match(res.headers.get('content-type')!, /^text\/csv/);
      const lines = (await res.text()).trim().split('\r\n');
      assert.equal(
        lines[0],
        'model,requests,attempts,prompt_tokens,completion_tokens,cached_tokens,reasoning_tokens,cost_usd,unpriced_attempts',
      );
      assert.deepEqual(lines.slice(1), ['mock,6,6,24,6,0,0,0.030000,0', 'unpriced,1,1,4,1,0,0,0.000000,1']);
    });

    test('bad input is 400 naming the parameter; a virtual key is 403', async () => {
      for (const [query, param] of [
        ['group_by=week', 'group_by'],
        ['from=yesterday', 'from'],
        [`from=${Date.now()}&to=${Date.now() - 1}`, 'from'],
        ['limit=0', 'limit'],
        ['cursor=not-a-cursor', 'cursor'],
        ['format=xml', 'format'],
      ]) {
        const res = await admin(`/admin/usage?${query}`);
        assert.equal(res.status, 400, query);
        assert.equal(((await res.json()) as { error: { param: string } }).error.param, param);
      }
      assert.equal((await admin('/admin/usage', {}, keys[0]!.key)).status, 403);
    });
  });
}
