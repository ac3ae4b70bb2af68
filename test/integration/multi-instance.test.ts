/**
 * Several gateway processes on one PostgreSQL database (and one Redis):
 * ten starting at once migrate the schema exactly once and all become ready;
 * a key created or revoked on one instance takes effect on the others
 * promptly, through Redis pub/sub; a new key works on every instance at once,
 * with Redis or without.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { MIGRATION_NAMES } from '../../src/store/migrations.ts';
import { pollUntil, probe, waitReady } from '../fixtures/ops/proc.ts';
import {
  chatStatus,
  logDir,
  newMasterKey,
  registerSecret,
  type SpawnedGateway,
  spawnGateway,
} from '../helpers/gateway.ts';
import { createPostgresDatabase, testPostgresUrl, testRedisUrl } from '../helpers/services.ts';

async function stopAll(gateways: SpawnedGateway[]): Promise<Array<number | string>> {
  for (const gw of gateways) {
    if (gw.child.exitCode === null && gw.child.signalCode === null) gw.kill('SIGTERM');
  }
  return Promise.all(gateways.map((gw) => gw.exited));
}

/** This test process's spawned-gateway stdout logs (see spawnGateway). */
function ownStdoutLogs(): Set<string> {
  const prefix = `gateway-child-${process.pid}-`;
  return new Set(
    readdirSync(logDir())
      .filter((name) => name.startsWith(prefix) && name.endsWith('.stdout.log'))
      .map((name) => join(logDir(), name)),
  );
}

async function query<T>(url: string, text: string): Promise<T[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query(text)).rows as T[];
  } finally {
    await client.end();
  }
}

describe('ten gateways starting at once on one fresh PostgreSQL database', () => {
  const INSTANCES = 10;
  let gateways: SpawnedGateway[] = [];
  after(async () => {
    await stopAll(gateways);
  });

  test('all become ready, the schema is migrated once, all stop with exit 0', async () => {
    const databaseUrl = await createPostgresDatabase(testPostgresUrl());
    const masterKey = newMasterKey();
    const logsBefore = ownStdoutLogs();
    const started = await Promise.allSettled(
      Array.from({ length: INSTANCES }, () =>
        spawnGateway({ masterKey, env: { DATABASE_URL: databaseUrl } }),
      ),
    );
    gateways = started.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
    assert.deepEqual(
      started.filter((s) => s.status === 'rejected').map((s) => String((s as PromiseRejectedResult).reason)),
      [],
      'every instance started',
    );
    await Promise.all(gateways.map((gw) => waitReady(gw.url)));
    for (const gw of gateways) {
      assert.equal((await probe(`${gw.url}/health/ready`)).status, 200);
      assert.match(gw.stderr(), /database: {2}postgres 127\.0\.0\.1:\d+\/t_/);
    }
    // One schema, migrated once, whichever process won the lock.
    const migrations = await query<{ name: string; n: number }>(
      databaseUrl,
      'select name, count(*)::int as n from kysely_migration group by name order by name',
    );
    assert.deepEqual(
      migrations,
      MIGRATION_NAMES.map((name) => ({ name, n: 1 })),
      'each migration recorded exactly once',
    );

    const codes = await stopAll(gateways);
    assert.deepEqual(codes, Array(INSTANCES).fill(0), 'all exit 0');

    // The logs are complete once the processes have exited.
    const newLogs = [...ownStdoutLogs()].filter((file) => !logsBefore.has(file));
    assert.equal(newLogs.length, INSTANCES);
    const migratedBy = newLogs.filter((file) =>
      readFileSync(file, 'utf8')
        .split('\n')
        .some((line) => line.includes('"database migrated"')),
    );
    assert.equal(migratedBy.length, 1, 'exactly one process logged "database migrated"');
    const line = readFileSync(migratedBy[0]!, 'utf8')
      .split('\n')
      .find((l) => l.includes('"database migrated"'))!;
    assert.deepEqual((JSON.parse(line) as { applied: string[] }).applied, [...MIGRATION_NAMES]);
  });
});

describe('key changes reach every instance through Redis', () => {
  let a: SpawnedGateway;
  let b: SpawnedGateway;
  const masterKey = newMasterKey();

  before(async () => {
    const databaseUrl = await createPostgresDatabase(testPostgresUrl());
    const env = { DATABASE_URL: databaseUrl, REDIS_URL: testRedisUrl() };
    // One at a time, so both are up before any key exists (no reload could hide a missed message).
    a = await spawnGateway({ masterKey, env });
    b = await spawnGateway({ masterKey, env });
    await Promise.all([waitReady(a.url), waitReady(b.url)]);
  });

  after(async () => {
    await stopAll([a, b].filter(Boolean));
  });

  for (const [from, to] of [
    ['A', 'B'],
    ['B', 'A'],
  ] as const) {
    test(`created on ${from}: works on ${to}; revoked on ${from}: ${to} refuses it within a second`, async () => {
      const origin = from === 'A' ? a : b;
      const other = from === 'A' ? b : a;
      const res = await fetch(`${origin.url}/admin/keys`, {
        method: 'POST',
        headers: { authorization: `Bearer ${masterKey}`, 'content-type': 'application/json' },
        body: JSON.stringify({ name: `sync-${from}`, models: ['mock'] }),
      });
      assert.equal(res.status, 201);
      const created = (await res.json()) as { id: string; key: string };
      registerSecret(created.key);

      assert.equal(await chatStatus(origin, created.key), 200, `works on ${from} at once`);
      // Before the pub/sub message arrives, the other instance finds the key in the database.
      assert.equal(await chatStatus(other, created.key), 200, `works on ${to} at once`);

      const revoked = await fetch(`${origin.url}/admin/keys/${created.id}`, {
        method: 'DELETE',
        headers: { authorization: `Bearer ${masterKey}` },
      });
      assert.equal(revoked.status, 200);
      assert.deepEqual(await revoked.json(), { id: created.id, revoked: true });
      assert.equal(await chatStatus(origin, created.key), 401, `refused on ${from} at once`);
      // 20 × 50 ms: revocation reaches the other instance in about a second.
      await pollUntil(
        `${to} refuses a key revoked on ${from}`,
        async () => (await chatStatus(other, created.key)) === 401,
        {
          attempts: 20,
          intervalMs: 50,
        },
      );
      assert.equal(await chatStatus(other, created.key), 401, 'and stays refused');
    });
  }

  test('both instances still stop cleanly', async () => {
    const codes = await stopAll([a, b]);
    assert.deepEqual(codes, [0, 0]);
  });
});

describe('without Redis, a key created on one instance works on another at once', () => {
  let a: SpawnedGateway;
  let b: SpawnedGateway;
  const masterKey = newMasterKey();

  before(async () => {
    const env = { DATABASE_URL: await createPostgresDatabase(testPostgresUrl()) };
    a = await spawnGateway({ masterKey, env });
    b = await spawnGateway({ masterKey, env });
  });

  after(async () => {
    await stopAll([a, b].filter(Boolean));
  });

  test('B finds the key A created in the database (its periodic reload is 30 s away)', async () => {
    const res = await fetch(`${a.url}/admin/keys`, {
      method: 'POST',
      headers: { authorization: `Bearer ${masterKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'no-redis' }),
    });
    assert.equal(res.status, 201);
    const created = (await res.json()) as { key: string };
    registerSecret(created.key);
    assert.equal(await chatStatus(b, created.key), 200);
    assert.equal(await chatStatus(b, created.key), 200, 'and again, from its cache');
    assert.equal(await chatStatus(b, `${created.key.slice(0, -4)}AAAA`), 401, 'a near miss is no key');
  });
});
