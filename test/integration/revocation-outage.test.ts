/**
 * Revocation is a security action, so it must not wait for Redis: two
 * in-process gateways share one PostgreSQL database and one private Redis; the
 * Redis server is stopped, a key is revoked on A, and B must refuse it long
 * before its 30 s periodic key reload could have run (B polls the database
 * for recent revocations while its key channel is down).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { pollUntil } from '../fixtures/ops/proc.ts';
import { chatStatus, registerSecret, startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { createPostgresDatabase, type Service, startRedis, testPostgresUrl } from '../helpers/services.ts';

/** B's log lines (pino JSON) that report revoked keys found by polling the database. */
function polledRevocations(gw: TestGateway): string[][] {
  return readFileSync(gw.logFile, 'utf8')
    .split('\n')
    .filter((line) => line.includes('"revoked keys found in the database'))
    .map((line) => (JSON.parse(line) as { keyIds: string[] }).keyIds);
}

describe('a key revoked while Redis is down', () => {
  let redis: Service | undefined;
  let a: TestGateway | undefined;
  let b: TestGateway | undefined;

  before(async () => {
    redis = await startRedis();
    const databaseUrl = await createPostgresDatabase(testPostgresUrl());
    const config = { storage: { redis_url: redis.url } };
    // Each gets its own master key; keys live in the shared database.
    a = await startTestGateway({ config, databaseUrl });
    b = await startTestGateway({ config, databaseUrl });
  });

  after(async () => {
    await Promise.allSettled([a?.close(), b?.close()]);
    // Idempotent: the test stops it already; this covers a failure before that.
    await redis?.stop();
  });

  test('is refused by the other instance within a 15 s bound (the periodic reload is 30 s)', async () => {
    assert.ok(a && b && redis);
    const res = await fetch(`${a.url}/admin/keys`, {
      method: 'POST',
      headers: { authorization: `Bearer ${a.masterKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'outage', models: ['mock'] }),
    });
    assert.equal(res.status, 201);
    const created = (await res.json()) as { id: string; key: string };
    registerSecret(created.key);
    // With Redis up, B learns of the key through pub/sub.
    await pollUntil('B accepts a key created on A', async () => (await chatStatus(b!, created.key)) === 200, {
      attempts: 100,
      intervalMs: 50,
    });

    await redis.stop();

    const revoked = await fetch(`${a.url}/admin/keys/${created.id}`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${a.masterKey}` },
    });
    assert.equal(revoked.status, 200, 'revoking needs only the database');
    assert.equal(await chatStatus(a, created.key), 401, 'refused on A at once');

    // 150 × 100 ms: B's periodic full reload (every 30 s from its start) cannot
    // fall inside this window, so passing proves the outage fast path.
    await pollUntil(
      'B refuses a key revoked on A while Redis is down',
      async () => (await chatStatus(b!, created.key)) === 401,
      { attempts: 150, intervalMs: 100 },
    );
    assert.equal(await chatStatus(b, created.key), 401, 'and stays refused');
    // And it was the revocation poll that dropped it, not a full reload.
    assert.ok(
      polledRevocations(b).some((ids) => ids.includes(created.id)),
      'B logged the revocation it found by polling',
    );
  });
});
