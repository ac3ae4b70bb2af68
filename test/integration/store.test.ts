/**
 * The SQL store behaves the same on SQLite and PostgreSQL: one suite, run
 * against both.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { sql } from 'kysely';
import {
  getKey,
  getKeyByHash,
  insertKey,
  listKeys,
  loadActiveKeys,
  type NewVirtualKey,
  revokeKey,
} from '../../src/store/keys-repo.ts';
import { MIGRATION_NAMES, migrate, schemaVersion } from '../../src/store/migrations.ts';
import { connectRedis, describeRedisUrl, pingRedis } from '../../src/store/redis.ts';
import {
  type Database,
  DatabaseConnectError,
  maskDatabaseUrl,
  openDatabase,
  parseDatabaseUrl,
} from '../../src/store/sql.ts';
import { createPostgresDatabase, testPostgresUrl, testRedisUrl } from '../helpers/services.ts';

const backends: { name: string; open: (dataDir: string) => Promise<Database> }[] = [
  { name: 'sqlite', open: (dataDir) => openDatabase({ dataDir }) },
  {
    name: 'postgres',
    open: async (dataDir) => openDatabase({ url: await createPostgresDatabase(testPostgresUrl()), dataDir }),
  },
];

function key(overrides: Partial<NewVirtualKey> & { id: string }): NewVirtualKey {
  return {
    name: `key ${overrides.id}`,
    keyHash: `hash-${overrides.id}`,
    keyHint: 'ab12',
    tier: null,
    allowedModels: null,
    metadata: {},
    expiresAt: null,
    createdAt: 1_700_000_000_000,
    ...overrides,
  };
}

for (const backend of backends) {
  describe(`store on ${backend.name}`, () => {
    const dataDir = mkdtempSync(join(tmpdir(), `switchyard-store-${backend.name}-`));
    let database: Database;

    before(async () => {
      database = await backend.open(dataDir);
    });
    after(async () => {
      await database.close();
      rmSync(dataDir, { recursive: true, force: true });
    });

    it('migrates a fresh database once, then has nothing to do', async () => {
      assert.equal(await schemaVersion(database), null);
      assert.deepEqual(await migrate(database), { applied: [...MIGRATION_NAMES] });
      assert.deepEqual(await migrate(database), { applied: [] });
      assert.equal(await schemaVersion(database), MIGRATION_NAMES.at(-1));
      assert.equal(database.dialect, backend.name);
      await database.ping();
    });

    it('the ledger client-id index holds only rows with one, and a lookup by client id uses it', async () => {
      if (database.dialect !== 'sqlite') {
        const { rows } = await sql<{ indexdef: string }>`
          select indexdef from pg_indexes where indexname = 'usage_ledger_client_request_idx'`.execute(
          database.db,
        );
        assert.match(rows[0]?.indexdef ?? '', /WHERE \(client_request_id IS NOT NULL\)/);
        return;
      }
      const { rows } = await sql<{ detail: string }>`
        explain query plan select request_id from usage_ledger where client_request_id = ${'abc'}`.execute(
        database.db,
      );
      assert.ok(
        rows.some((r) => r.detail.includes('usage_ledger_client_request_idx')),
        JSON.stringify(rows),
      );
    });

    it('round-trips a key: JSON fields parsed, times as numbers', async () => {
      const expiresAt = 4_102_444_800_000; // beyond 2^32 ms, to catch 32-bit truncation
      await insertKey(
        database,
        key({
          id: 'key_roundtrip',
          tier: 'gold',
          allowedModels: ['fast', 'embed'],
          metadata: { team: 'search', nested: { n: 1, list: [true, null] }, unicode: 'é✓' },
          expiresAt,
          limits: { requests_per_minute: 60, tokens_per_day: 1_000_000 },
        }),
      );
      const row = await getKey(database, 'key_roundtrip');
      assert.deepEqual(row, {
        id: 'key_roundtrip',
        name: 'key key_roundtrip',
        keyHash: 'hash-key_roundtrip',
        keyHint: 'ab12',
        tier: 'gold',
        allowedModels: ['fast', 'embed'],
        metadata: { team: 'search', nested: { n: 1, list: [true, null] }, unicode: 'é✓' },
        expiresAt,
        createdAt: 1_700_000_000_000,
        revokedAt: null,
        limits: { requests_per_minute: 60, tokens_per_day: 1_000_000 },
        budget: null,
        teamId: null,
      });
      assert.equal(typeof row?.createdAt, 'number');
      assert.equal(typeof row?.expiresAt, 'number');
      assert.deepEqual(await getKeyByHash(database, 'hash-key_roundtrip'), row);
      assert.equal(await getKey(database, 'key_missing'), undefined);
    });

    it('stores an empty model list as "all models"', async () => {
      await insertKey(database, key({ id: 'key_empty_models', allowedModels: [] }));
      assert.equal((await getKey(database, 'key_empty_models'))?.allowedModels, null);
    });

    it('rejects a second key with the same hash', async () => {
      await insertKey(database, key({ id: 'key_dup_a', keyHash: 'same-hash' }));
      await assert.rejects(insertKey(database, key({ id: 'key_dup_b', keyHash: 'same-hash' })));
      assert.equal(await getKey(database, 'key_dup_b'), undefined);
    });

    it('strips NUL characters from text columns instead of failing the write', async () => {
      await insertKey(database, key({ id: 'key_nul', name: 'a\u0000b', metadata: { note: 'x\u0000y' } }));
      const row = await getKey(database, 'key_nul');
      assert.equal(row?.name, 'ab');
      // Inside JSON the NUL is escaped as the text `\u0000`, so it is stored and comes back intact.
      assert.deepEqual(row?.metadata, { note: 'x\u0000y' });
    });

    it('lists, revokes once, and loads only active, unexpired keys', async () => {
      const now = 1_800_000_000_000;
      await insertKey(database, key({ id: 'key_active', createdAt: now - 3 }));
      await insertKey(database, key({ id: 'key_revoked', createdAt: now - 2 }));
      await insertKey(database, key({ id: 'key_expired', createdAt: now - 1, expiresAt: now - 1 }));
      await insertKey(database, key({ id: 'key_future', createdAt: now, expiresAt: now + 60_000 }));

      assert.equal(await revokeKey(database, 'key_revoked', now), true);
      assert.equal(await revokeKey(database, 'key_revoked', now + 1), false, 'already revoked');
      assert.equal(await revokeKey(database, 'key_unknown', now), false, 'unknown key');
      assert.equal((await getKey(database, 'key_revoked'))?.revokedAt, now, 'first revocation time kept');

      const all = (await listKeys(database)).map((k) => k.id);
      for (const id of ['key_active', 'key_revoked', 'key_expired', 'key_future'])
        assert.ok(all.includes(id));

      const active = (await loadActiveKeys(database, now)).map((k) => k.id);
      assert.ok(active.includes('key_active'));
      assert.ok(active.includes('key_future'));
      assert.ok(!active.includes('key_revoked'));
      assert.ok(!active.includes('key_expired'));
    });
  });
}

describe('database URLs', () => {
  it('maps DATABASE_URL forms to a dialect and target', () => {
    assert.deepEqual(parseDatabaseUrl(undefined, 'data'), {
      dialect: 'sqlite',
      path: join('data', 'switchyard.db'),
    });
    assert.deepEqual(parseDatabaseUrl('', '/d'), { dialect: 'sqlite', path: '/d/switchyard.db' });
    assert.deepEqual(parseDatabaseUrl('sqlite:///var/lib/s.db', 'x'), {
      dialect: 'sqlite',
      path: '/var/lib/s.db',
    });
    assert.deepEqual(parseDatabaseUrl('sqlite:rel.db', 'x'), { dialect: 'sqlite', path: 'rel.db' });
    assert.deepEqual(parseDatabaseUrl('file:/tmp/a.db', 'x'), { dialect: 'sqlite', path: '/tmp/a.db' });
    assert.deepEqual(parseDatabaseUrl('postgresql://u:p@h:1/db', 'x'), {
      dialect: 'postgres',
      connectionString: 'postgresql://u:p@h:1/db',
    });
    assert.throws(
      () => parseDatabaseUrl('mysql://u:hunter2@h/db', 'x'),
      (err: Error) => {
        assert.ok(err instanceof DatabaseConnectError);
        assert.ok(!err.message.includes('hunter2'));
        return true;
      },
    );
  });

  it('masks passwords, also in strings that are not valid URLs', () => {
    assert.equal(maskDatabaseUrl('postgres://u:hunter2@h:5432/db'), 'postgres://u:***@h:5432/db');
    assert.equal(maskDatabaseUrl('postgres://u@h/db?password=hunter2'), 'postgres://u@h/db?password=***');
    assert.ok(!maskDatabaseUrl('postgres://u:hun ter2@[bad/db').includes('hun ter2'));
  });

  it('describes PostgreSQL without the password', async () => {
    const url = await createPostgresDatabase(testPostgresUrl());
    const password = decodeURIComponent(new URL(url).password);
    const database = await openDatabase({ url, dataDir: tmpdir() });
    try {
      assert.match(database.description, /^postgres 127\.0\.0\.1:\d+\/t_[0-9a-f]+$/);
      assert.ok(!database.description.includes(password));
    } finally {
      await database.close();
    }
  });

  it('reads through a replica when one is configured', async () => {
    const url = await createPostgresDatabase(testPostgresUrl());
    // The primary doubles as its own replica: enough to prove reads go through the replica pool.
    const database = await openDatabase({ url, dataDir: tmpdir(), replicaUrls: [url] });
    try {
      await migrate(database);
      await insertKey(database, key({ id: 'key_replica' }));
      assert.notEqual(database.readDb, database.db);
      const row = await database.readDb
        .selectFrom('virtual_keys')
        .select('id')
        .where('id', '=', 'key_replica')
        .executeTakeFirst();
      assert.deepEqual(row, { id: 'key_replica' });
      assert.match(database.description, /\(\+1 replicas\)$/);
    } finally {
      await database.close();
    }
  });

  it('reports a wrong password clearly, without printing it', async () => {
    const url = new URL(testPostgresUrl());
    url.password = 'wrong-secret-password';
    await assert.rejects(openDatabase({ url: url.toString(), dataDir: tmpdir() }), (err: Error) => {
      assert.ok(err instanceof DatabaseConnectError);
      assert.equal(err.code, '28P01');
      assert.match(
        err.message,
        /^cannot connect to postgres 127\.0\.0\.1:\d+\/postgres: password authentication/,
      );
      assert.ok(!err.message.includes('wrong-secret-password'));
      assert.ok(!String(err.stack).includes('wrong-secret-password'));
      return true;
    });
  });

  it('reports a refused connection clearly', async () => {
    const port = await closedPort();
    const url = `postgres://u:refused-secret@127.0.0.1:${port}/db`;
    await assert.rejects(openDatabase({ url, dataDir: tmpdir() }), (err: Error) => {
      assert.ok(err instanceof DatabaseConnectError);
      assert.equal(err.code, 'ECONNREFUSED');
      assert.match(err.message, new RegExp(`^cannot connect to postgres 127\\.0\\.0\\.1:${port}/db`));
      assert.ok(!err.message.includes('refused-secret'));
      return true;
    });
  });

  it('rejects a malformed PostgreSQL URL without echoing its password', () => {
    assert.throws(
      () => parseDatabaseUrl('postgres://u:p@ss word@h:notaport/db', 'x'),
      (err: Error) => err instanceof DatabaseConnectError && !err.message.includes('ss word'),
    );
  });
});

describe('redis connection', () => {
  it('connects and answers PING', async () => {
    const redis = connectRedis(testRedisUrl(), { name: 'store-test' });
    try {
      await pingRedis(redis);
      assert.equal(await redis.client('GETNAME'), 'store-test');
    } finally {
      redis.disconnect();
    }
  });

  it('masks the password in descriptions', () => {
    assert.equal(describeRedisUrl('redis://:s3cret@h:6379/0'), 'redis://:***@h:6379/0');
    assert.equal(describeRedisUrl('rediss://user:s3cret@h:6380'), 'rediss://user:***@h:6380');
    assert.ok(!describeRedisUrl('redis://u:s3 cret@[bad').includes('s3 cret'));
  });

  it('fails commands against an unreachable Redis without crashing the process', async () => {
    const warnings: object[] = [];
    const redis = connectRedis(`redis://:pw@127.0.0.1:${await closedPort()}`, {
      logger: { warn: (obj) => warnings.push(obj) },
    });
    try {
      await assert.rejects(pingRedis(redis));
      assert.ok(warnings.length > 0, 'the connection error was logged, not thrown');
      assert.ok(!JSON.stringify(warnings).includes(':pw@'));
      const aborted = new AbortController();
      aborted.abort(new Error('caller gave up'));
      await assert.rejects(pingRedis(redis, aborted.signal), /caller gave up/);
    } finally {
      redis.disconnect();
    }
  });
});

/** A loopback port with nothing listening (bound, then released). */
function closedPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}
