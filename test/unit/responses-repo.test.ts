/**
 * The Responses API's SQL store on SQLite and PostgreSQL: rows scoped to
 * their key, a conversation read oldest first in one query, continuing a
 * chain renews its retention, a deleted or expired turn breaks the chain
 * (said, not silently shortened), and expired rows are swept.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { migrate } from '../../src/store/migrations.ts';
import { ResponsesRepo, type StoredResponse } from '../../src/store/responses-repo.ts';
import { type Database, openDatabase } from '../../src/store/sql.ts';
import { createPostgresDatabase, testPostgresUrl } from '../helpers/services.ts';

const T0 = 1_800_000_000_000;
const DAY = 86_400_000;

const backends: { name: string; url: () => Promise<string | undefined> }[] = [
  { name: 'sqlite', url: async () => undefined },
  { name: 'postgres', url: () => createPostgresDatabase(testPostgresUrl()) },
];

for (const backend of backends) {
  describe(`responses store on ${backend.name}`, () => {
    const dataDir = mkdtempSync(join(tmpdir(), `switchyard-responses-${backend.name}-`));
    let database: Database;
    let now = T0;
    let repo: ResponsesRepo;

    const row = (id: string, previous: string | null, keyId = 'key_a'): StoredResponse => ({
      id,
      keyId,
      previousResponseId: previous,
      model: 'fast',
      inputItems: [{ type: 'message', id: `in_${id}`, role: 'user', content: `asked in ${id}` }],
      outputItems: [{ type: 'message', id: `out_${id}`, role: 'assistant', content: [] }],
      response: { id, object: 'response', note: 'ünïcode ✓' },
      createdAt: now,
      expiresAt: repo.expiryFromNow(),
    });

    before(async () => {
      database = await openDatabase({ url: await backend.url(), dataDir });
      await migrate(database);
      repo = new ResponsesRepo(database, { retentionMs: 30 * DAY, now: () => now });
    });
    after(async () => {
      await repo.idle();
      await database.close();
      rmSync(dataDir, { recursive: true, force: true });
    });

    test('a response round-trips for its key only; delete is scoped too', async () => {
      now = T0;
      const stored = row('resp_one', null);
      await repo.save(stored);
      assert.deepEqual(await repo.get('key_a', 'resp_one'), stored);
      assert.equal(await repo.get('key_b', 'resp_one'), undefined);
      assert.equal(await repo.delete('key_b', 'resp_one'), false);
      assert.equal(await repo.delete('key_a', 'resp_one'), true);
      assert.equal(await repo.get('key_a', 'resp_one'), undefined);
      assert.equal(await repo.delete('key_a', 'resp_one'), false);
    });

    test('a chain is read oldest first; another key cannot read it', async () => {
      now = T0;
      await repo.save(row('resp_c1', null));
      await repo.save(row('resp_c2', 'resp_c1'), ['resp_c1']);
      await repo.save(row('resp_c3', 'resp_c2'), ['resp_c1', 'resp_c2']);
      const chain = await repo.chain('key_a', 'resp_c3');
      assert.ok(chain.found);
      assert.deepEqual(
        chain.turns.map((t) => [t.id, (t.inputItems[0] as { content: string }).content]),
        [
          ['resp_c1', 'asked in resp_c1'],
          ['resp_c2', 'asked in resp_c2'],
          ['resp_c3', 'asked in resp_c3'],
        ],
      );
      assert.deepEqual(await repo.chain('key_b', 'resp_c3'), { found: false, missing: 'resp_c3' });
      assert.deepEqual(await repo.chain('key_a', 'resp_nope'), { found: false, missing: 'resp_nope' });
    });

    test('a deleted earlier turn breaks the chain, naming it', async () => {
      now = T0;
      await repo.save(row('resp_d1', null));
      await repo.save(row('resp_d2', 'resp_d1'), ['resp_d1']);
      await repo.delete('key_a', 'resp_d1');
      assert.deepEqual(await repo.chain('key_a', 'resp_d2'), { found: false, missing: 'resp_d1' });
    });

    test('continuing a chain renews it; expired rows are invisible, then swept', async () => {
      now = T0;
      await repo.save(row('resp_e1', null));
      now = T0 + 20 * DAY;
      await repo.save(row('resp_e2', 'resp_e1'), ['resp_e1']);
      await repo.save(row('resp_lone', null));
      now = T0 + 40 * DAY;
      // resp_e1 would have expired at day 30; continuing it at day 20 kept it to day 50.
      const chain = await repo.chain('key_a', 'resp_e2');
      assert.ok(chain.found, 'the conversation is still whole');
      assert.deepEqual(
        chain.turns.map((t) => t.id),
        ['resp_e1', 'resp_e2'],
      );
      now = T0 + 51 * DAY;
      assert.equal(await repo.get('key_a', 'resp_e2'), undefined, 'past its expiry: gone at once');
      assert.deepEqual(await repo.chain('key_a', 'resp_e2'), { found: false, missing: 'resp_e2' });
      const removed = await repo.sweep();
      assert.ok(removed >= 3, `swept ${removed}`);
      const left = await database.db
        .selectFrom('responses')
        .select('id')
        .where('id', 'in', ['resp_e1', 'resp_e2', 'resp_lone'])
        .execute();
      assert.deepEqual(left, []);
    });
  });
}
