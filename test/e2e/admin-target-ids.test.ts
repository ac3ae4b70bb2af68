/**
 * Target ids are `<provider>/<upstream model>` and contain `/` (model ids may
 * hold more). Both admin families that take one, `/admin/targets/{id}/…` and
 * `/admin/breakers/{id}/…`, read it the same way: URL-encoded or raw, the
 * action is the last path segment and the id is everything before it,
 * decoded once.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts';

let gw: TestGateway;

before(async () => {
  gw = await startTestGateway({
    config: {
      providers: { a: { type: 'mock' } },
      models: {
        m: {
          targets: [
            { provider: 'a', model: 'org/deep-model' },
            { provider: 'a', model: 'pct%41' },
          ],
        },
      },
    },
  });
});

after(async () => {
  await gw?.close();
});

async function post(path: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${gw.url}${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${gw.masterKey}` },
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

const FAMILIES = [
  {
    base: '/admin/targets',
    off: ['deactivate', { active: false }],
    on: ['activate', { active: true }],
  },
  {
    base: '/admin/breakers',
    off: ['isolate', { state: 'isolated' }],
    on: ['reset', { state: 'closed' }],
  },
] as const;

for (const { base, off, on } of FAMILIES) {
  describe(`${base}/{id}/…`, () => {
    test('a raw id with slashes works: the action is the last segment', async () => {
      const id = 'a/org/deep-model';
      const first = await post(`${base}/${id}/${off[0]}`);
      assert.equal(first.status, 200, JSON.stringify(first.body));
      assert.deepEqual(first.body, { id, ...off[1] });
      const second = await post(`${base}/${id}/${on[0]}`);
      assert.equal(second.status, 200, JSON.stringify(second.body));
      assert.deepEqual(second.body, { id, ...on[1] });
    });

    test('a URL-encoded id works, and is decoded once (a `%` in the id survives)', async () => {
      for (const id of ['a/org/deep-model', 'a/pct%41']) {
        const first = await post(`${base}/${encodeURIComponent(id)}/${off[0]}`);
        assert.equal(first.status, 200, `${id}: ${JSON.stringify(first.body)}`);
        assert.deepEqual(first.body, { id, ...off[1] });
        const second = await post(`${base}/${encodeURIComponent(id)}/${on[0]}`);
        assert.deepEqual(second.body, { id, ...on[1] });
      }
    });

    test('an unknown id, an unknown action or no id: 404 in the OpenAI shape', async () => {
      for (const path of [
        `${base}/${encodeURIComponent('a/nope')}/${off[0]}`,
        `${base}/a/nope/${off[0]}`,
        `${base}/a/org/deep-model/explode`,
        `${base}/${off[0]}`,
        `${base}//${off[0]}`,
      ]) {
        const { status, body } = await post(path);
        assert.equal(status, 404, path);
        assert.equal((body['error'] as { type?: string } | undefined)?.type, 'not_found_error', path);
      }
    });
  });
}
