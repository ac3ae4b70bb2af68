/**
 * The SQL cache tier end to end: with `cache.sql.enabled` (and no Redis) an
 * answer cached by one gateway process is served by the next one started on
 * the same data_dir, without calling upstream; without it, a restart forgets.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { newMasterKey, type SpawnedGateway, spawnGateway, tempDir } from '../helpers/gateway.ts';
import { type MockUpstream, startMockUpstream } from '../helpers/mock-upstream.ts';

const UPSTREAM_KEY = 'sk-CANARY-cache-sql-0123456789';

function config(upstream: MockUpstream, sql: boolean): Record<string, unknown> {
  return {
    providers: { up: { type: 'openai', base_url: upstream.baseUrl, api_key: UPSTREAM_KEY } },
    models: {
      cached: {
        targets: [{ provider: 'up', model: 'gpt-4o-mini' }],
        retries: { max: 0 },
        cache: { enabled: true },
      },
    },
    cache: { sql: { enabled: sql } },
  };
}

async function ask(
  gw: SpawnedGateway,
  content: string,
  extra: Record<string, unknown> = {},
): Promise<{ status: number; cache: string | null; text: string }> {
  const res = await fetch(`${gw.baseUrl}/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${gw.masterKey}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'cached', messages: [{ role: 'user', content }], ...extra }),
  });
  return { status: res.status, cache: res.headers.get('x-switchyard-cache'), text: await res.text() };
}

/** Graceful stop (SIGTERM), as an operator restarts it; resolves with the exit code. */
async function stop(gw: SpawnedGateway): Promise<number | string> {
  gw.kill('SIGTERM');
  return gw.exited;
}

describe('SQL cache tier across a gateway restart', () => {
  let upstream: MockUpstream;
  before(async () => {
    upstream = await startMockUpstream();
  });
  after(async () => {
    await upstream.close();
  });

  test('with cache.sql.enabled the next process on the same data_dir answers from the cache', async () => {
    upstream.reset();
    const dataDir = tempDir('switchyard-cache-sql-');
    const masterKey = newMasterKey();
    const first = await spawnGateway({ config: config(upstream, true), dataDir, masterKey });
    const miss = await ask(first, 'remember me across restarts');
    assert.equal(miss.status, 200);
    assert.equal(miss.cache, 'miss');
    assert.equal(await stop(first), 0);

    const second = await spawnGateway({ config: config(upstream, true), dataDir, masterKey });
    try {
      const hit = await ask(second, 'remember me across restarts');
      assert.equal(hit.status, 200);
      assert.equal(hit.cache, 'hit');
      assert.deepEqual(JSON.parse(hit.text), JSON.parse(miss.text));
      // A streaming request for the same question is replayed from it too.
      const streamed = await ask(second, 'remember me across restarts', { stream: true });
      assert.equal(streamed.cache, 'hit');
      assert.match(streamed.text, /data: \[DONE\]/);
      assert.equal(upstream.requests.length, 1, 'upstream saw only the first process ask');
      const metrics = await (await fetch(`${second.url}/metrics`)).text();
      assert.match(metrics, /switchyard_cache_hits_total\{tier="sql"\} 1\b/);
    } finally {
      assert.equal(await stop(second), 0);
    }
  });

  test('without it (memory only) a restart forgets: the control', async () => {
    upstream.reset();
    const dataDir = tempDir('switchyard-cache-sql-off-');
    const masterKey = newMasterKey();
    const first = await spawnGateway({ config: config(upstream, false), dataDir, masterKey });
    assert.equal((await ask(first, 'forgotten on restart')).cache, 'miss');
    assert.equal((await ask(first, 'forgotten on restart')).cache, 'hit');
    assert.equal(await stop(first), 0);
    const second = await spawnGateway({ config: config(upstream, false), dataDir, masterKey });
    try {
      assert.equal((await ask(second, 'forgotten on restart')).cache, 'miss');
      assert.equal(upstream.requests.length, 2);
    } finally {
      assert.equal(await stop(second), 0);
    }
  });
});
