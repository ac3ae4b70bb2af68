/**
 * The response cache's L3 tier (SqlCacheStore) on real databases, one suite
 * run against SQLite (a temp file) and PostgreSQL: round trip, the lifetime
 * rule (the entry's own expiry capped by the tier's ttl, at read time too),
 * upsert, invalidation by model/scope/all in batches, the bounded sweep,
 * what is not stored, writes finished by close(), a failing database
 * skipped for a while, and rows surviving a reopened database; then the
 * tier under ResponseCache (hit, promotion).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { CacheEntry, CacheKey } from '../../src/cache/cache-store.ts';
import { MemoryCacheStore } from '../../src/cache/memory-cache-store.ts';
import { ResponseCache } from '../../src/cache/response-cache.ts';
import {
  SqlCacheStore,
  type SqlCacheStoreOptions,
  UNAVAILABLE_BACKOFF_MS,
} from '../../src/cache/sql-cache-store.ts';
import { migrate } from '../../src/store/migrations.ts';
import { type Database, openDatabase } from '../../src/store/sql.ts';
import { createPostgresDatabase, testPostgresUrl } from '../helpers/services.ts';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
/** Beyond 2^32 ms: catches a 32-bit column. */
const T0 = 4_102_444_800_000;

const key = (hash: string, model = 'gpt/4o:mini é', scope = 'key:key_a'): CacheKey => ({
  model,
  scope,
  hash,
});
const entry = (body: string, fields: Partial<CacheEntry> = {}): CacheEntry => ({
  body,
  model: 'gpt/4o:mini é',
  scope: 'key:key_a',
  storedAt: T0,
  expiresAt: T0 + HOUR,
  promptTokens: 12,
  completionTokens: 34,
  costMicros: 5_000_000_123,
  ...fields,
});

const backends: { name: string; url: () => Promise<string | undefined> }[] = [
  { name: 'sqlite', url: async () => undefined },
  { name: 'postgres', url: () => createPostgresDatabase(testPostgresUrl()) },
];

for (const backend of backends) {
  describe(`SQL cache tier on ${backend.name}`, () => {
    const dataDir = mkdtempSync(join(tmpdir(), `switchyard-cache-sql-${backend.name}-`));
    let url: string | undefined;
    let database: Database;
    let now = T0;
    const open = () => openDatabase({ url, dataDir });
    const store = (options: Partial<SqlCacheStoreOptions> = {}) =>
      new SqlCacheStore(database, { ttlMs: 7 * DAY, sweepIntervalMs: 0, clock: () => now, ...options });
    const rows = async () =>
      (await database.db.selectFrom('response_cache').select('key').orderBy('key').execute()).map(
        (r) => r.key,
      );
    const clear = () => database.db.deleteFrom('response_cache').execute();

    before(async () => {
      url = await backend.url();
      database = await open();
      await migrate(database);
    });
    after(async () => {
      await database.close();
      rmSync(dataDir, { recursive: true, force: true });
    });

    test('an entry round-trips with every field; other keys miss', async () => {
      now = T0;
      await clear();
      const sql = store();
      assert.equal(sql.tier, 'sql');
      const stored = entry('{"answer":"ünïcode ✓"}');
      await sql.set(key('h1'), stored);
      assert.deepEqual(await sql.get(key('h1')), stored);
      assert.equal(await sql.get(key('h2')), undefined);
      assert.equal(await sql.get(key('h1', 'other')), undefined, 'the model is part of the address');
      assert.equal(await sql.get(key('h1', undefined, 'key:key_b')), undefined, 'so is the scope');
      await sql.close();
    });

    test("served until the entry's own expiry, never after", async () => {
      now = T0;
      await clear();
      const sql = store();
      await sql.set(key('h'), entry('"x"', { expiresAt: T0 + HOUR }));
      now = T0 + HOUR - 1;
      assert.equal((await sql.get(key('h')))?.body, '"x"');
      now = T0 + HOUR;
      assert.equal(await sql.get(key('h')), undefined);
      await sql.close();
    });

    test("the tier's ttl caps a longer-lived entry, and the hit carries the capped expiry", async () => {
      now = T0;
      await clear();
      const sql = store({ ttlMs: DAY });
      await sql.set(key('h'), entry('"x"', { expiresAt: T0 + 30 * DAY }));
      now = T0 + DAY - 1;
      assert.equal((await sql.get(key('h')))?.expiresAt, T0 + DAY);
      now = T0 + DAY;
      assert.equal(await sql.get(key('h')), undefined);
      await sql.close();
    });

    test('lowering the tier ttl applies at once to rows already stored', async () => {
      now = T0;
      await clear();
      const week = store({ ttlMs: 7 * DAY });
      await week.set(key('h'), entry('"x"', { expiresAt: T0 + 30 * DAY }));
      await week.close();
      now = T0 + 2 * DAY;
      const day = store({ ttlMs: DAY });
      assert.equal(await day.get(key('h')), undefined);
      await day.close();
    });

    test('set upserts: the newest answer replaces the old one in its single row', async () => {
      now = T0;
      await clear();
      const sql = store();
      await sql.set(key('h'), entry('"old"'));
      await sql.set(
        key('h'),
        entry('"new"', { storedAt: T0 + 1, expiresAt: T0 + 2 * HOUR, promptTokens: 1 }),
      );
      const got = await sql.get(key('h'));
      assert.equal(got?.body, '"new"');
      assert.equal(got?.expiresAt, T0 + 2 * HOUR);
      assert.equal(got?.promptTokens, 1);
      assert.equal((await rows()).length, 1);
      await sql.close();
    });

    test('an answer it cannot keep (too large, NUL, already expired) is not stored and removes the older one', async () => {
      now = T0;
      await clear();
      const sql = store({ maxBodyBytes: 100 });
      for (const body of ['"é'.padEnd(60, 'é'), 'x\u0000y']) {
        await sql.set(key('h'), entry('"old"'));
        await sql.set(key('h'), entry(body));
        assert.equal(await sql.get(key('h')), undefined, JSON.stringify(body));
        assert.deepEqual(await rows(), []);
      }
      await sql.set(key('h'), entry('"old"'));
      await sql.set(key('h'), entry('"lapsed"', { expiresAt: T0 }));
      assert.deepEqual(await rows(), []);
      // Exactly at the bound (in UTF-8 bytes, not characters) is kept.
      const fits = `"${'é'.repeat(49)}"`;
      assert.equal(Buffer.byteLength(fits), 100);
      await sql.set(key('h'), entry(fits));
      assert.equal((await sql.get(key('h')))?.body, fits);
      await sql.close();
    });

    test('invalidation by model and key, by model, by key, then all; counts what it removed', async () => {
      now = T0;
      await clear();
      const sql = store({ batchRows: 2 });
      const put = (hash: string, model: string, scope: string) =>
        sql.set(key(hash, model, scope), entry(`"${hash}"`, { model, scope }));
      await put('1', 'm1', 'key:a');
      await put('2', 'm1', 'key:a');
      await put('3', 'm1', 'key:b');
      await put('4', 'm2', 'key:a');
      for (let i = 0; i < 5; i++) await put(`g${i}`, 'm3', 'global');
      assert.equal(await sql.invalidate({ model: 'm1', scope: 'key:a' }), 2);
      assert.equal(await sql.get(key('1', 'm1', 'key:a')), undefined);
      assert.ok(await sql.get(key('3', 'm1', 'key:b')));
      assert.equal(await sql.invalidate({ model: 'm1' }), 1);
      assert.equal(await sql.invalidate({ scope: 'key:a' }), 1);
      assert.ok(await sql.get(key('g0', 'm3', 'global')));
      assert.equal(await sql.invalidate({ model: 'nothing' }), 0);
      // Five rows in batches of two: every batch taken, none left.
      assert.equal(await sql.invalidate({}), 5);
      assert.deepEqual(await rows(), []);
      await sql.close();
    });

    test('the sweep deletes expired rows only, a bounded number per run', async () => {
      now = T0;
      await clear();
      const sql = store({ batchRows: 2, sweepMaxBatches: 2 });
      for (let i = 0; i < 5; i++) await sql.set(key(`old${i}`), entry('"o"', { expiresAt: T0 + 10 }));
      await sql.set(key('live'), entry('"l"', { expiresAt: T0 + HOUR }));
      now = T0 + 10;
      assert.equal(await sql.sweep(), 4, 'two batches of two');
      assert.equal(await sql.sweep(), 1);
      assert.equal(await sql.sweep(), 0);
      assert.deepEqual(await rows(), [`${encodeURIComponent('gpt/4o:mini é')}:key%3Akey_a:live`]);
      await sql.close();
    });

    test('the sweep runs by itself, again and again, on its timer', async () => {
      now = T0;
      await clear();
      let runs = 0;
      let ran: (() => void) | undefined;
      class Observed extends SqlCacheStore {
        override async sweep(): Promise<number> {
          const removed = await super.sweep();
          runs++;
          ran?.();
          return removed;
        }
      }
      const nextRun = () =>
        new Promise<void>((resolve) => {
          ran = resolve;
        });
      const writer = store();
      await writer.set(key('old'), entry('"o"', { expiresAt: T0 + 10 }));
      await writer.set(key('live'), entry('"l"', { expiresAt: T0 + HOUR }));
      await writer.close();
      now = T0 + 10;
      const first = nextRun();
      const sql = new Observed(database, { ttlMs: DAY, sweepIntervalMs: 1, clock: () => now });
      await first;
      assert.deepEqual(await rows(), [`${encodeURIComponent('gpt/4o:mini é')}:key%3Akey_a:live`]);
      await nextRun();
      assert.ok(runs >= 2);
      await sql.close();
    });

    test('close() waits for writes in flight; afterwards the store refuses work', async () => {
      now = T0;
      await clear();
      const sql = store();
      const writes = Array.from({ length: 20 }, (_, i) => sql.set(key(`w${i}`), entry(`"${i}"`)));
      // As the gateway stops: the cache first, then the connection beneath it.
      await sql.close();
      await database.close();
      await Promise.all(writes);
      database = await open();
      assert.equal((await rows()).length, 20);
      await assert.rejects(sql.get(key('w0')), /closed/);
      await assert.rejects(sql.set(key('w0'), entry('"x"')), /closed/);
      await assert.rejects(sql.invalidate({}), /closed/);
    });

    test('a failing database is skipped at once for a while, then asked again', async () => {
      now = T0;
      const broken = await open();
      const sql = new SqlCacheStore(broken, { ttlMs: DAY, sweepIntervalMs: 0, clock: () => now });
      await broken.close();
      const skipped = /skipping the SQL tier/;
      await assert.rejects(sql.get(key('h')), (error: Error) => !skipped.test(error.message));
      await assert.rejects(sql.get(key('h')), skipped);
      await assert.rejects(sql.set(key('h'), entry('"x"')), skipped);
      now = T0 + UNAVAILABLE_BACKOFF_MS;
      await assert.rejects(sql.set(key('h'), entry('"x"')), (error: Error) => !skipped.test(error.message));
      await assert.rejects(sql.get(key('h')), skipped);
      await sql.close();
    });

    test('entries survive closing and reopening the database', async () => {
      now = T0;
      await clear();
      const first = store();
      const stored = entry('{"kept":true}');
      await first.set(key('persist'), stored);
      await first.close();
      await database.close();
      database = await open();
      const second = store();
      assert.deepEqual(await second.get(key('persist')), stored);
      await second.close();
    });

    test('under ResponseCache: a hit in SQL is reported as such and promoted to memory', async () => {
      now = T0;
      await clear();
      const sql = store({ ttlMs: DAY });
      await sql.set(key('p'), entry('"deep"', { expiresAt: T0 + 30 * DAY }));
      const memory = new MemoryCacheStore({ maxBytes: 1 << 20, clock: () => now });
      const cache = new ResponseCache([memory, sql], { clock: () => now });
      const hit = await cache.lookup(key('p'));
      assert.equal(hit?.tier, 'sql');
      assert.equal(cache.stats.hits.sql, 1);
      assert.equal(memory.getNow(key('p'))?.expiresAt, T0 + DAY, 'promoted with the capped expiry');
      assert.equal((await cache.lookup(key('p')))?.tier, 'memory');
      // A computed value reaches the SQL tier too, and invalidation clears both tiers.
      const value = await cache.getOrCompute({ key: key('q'), ttlMs: HOUR, compute: async () => ({ n: 1 }) });
      assert.deepEqual(value, { n: 1 });
      assert.equal((await sql.get(key('q')))?.body, '{"n":1}');
      assert.deepEqual(await cache.invalidate({ model: 'gpt/4o:mini é' }), { memory: 2, sql: 2 });
      await cache.close();
      await assert.rejects(sql.get(key('p')), /closed/, 'ResponseCache.close closes its tiers');
    });
  });
}
