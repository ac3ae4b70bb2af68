/**
 * `storage.migrate: false` (SWITCHYARD_MIGRATE=false): the gateway never migrates
 * and refuses to serve on a schema older than its own; `switchyard migrate` (the
 * Kubernetes migration Job) brings the schema up to date, after which it serves.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Migrator } from 'kysely/migration';
import { MIGRATION_NAMES, MIGRATIONS, pendingMigrations } from '../../src/store/migrations.ts';
import { openDatabase } from '../../src/store/sql.ts';
import { chatStatus, newMasterKey, runCli, spawnGateway, tempDir, writeConfig } from '../helpers/gateway.ts';

const MOCK = {
  providers: { mock: { type: 'mock' } },
  models: { mock: { targets: [{ provider: 'mock', model: 'mock-1' }] } },
};

/** A database as the previous release left it: every migration but the newest applied. */
async function databaseOneReleaseBehind(dataDir: string): Promise<void> {
  const database = await openDatabase({ url: undefined, dataDir });
  try {
    const previous = MIGRATION_NAMES.at(-2);
    assert.ok(previous, 'needs at least two migrations');
    const migrator = new Migrator({ db: database.db, provider: { getMigrations: async () => MIGRATIONS } });
    const { error } = await migrator.migrateTo(previous);
    assert.equal(error, undefined);
    assert.deepEqual(await pendingMigrations(database), [MIGRATION_NAMES.at(-1)]);
  } finally {
    await database.close();
  }
}

async function pendingIn(dataDir: string): Promise<string[]> {
  const database = await openDatabase({ url: undefined, dataDir });
  try {
    return await pendingMigrations(database);
  } finally {
    await database.close();
  }
}

describe('schema gate (storage.migrate: false)', () => {
  it('refuses to start on an empty database and migrates nothing', async () => {
    const dataDir = tempDir();
    const config = writeConfig({ ...MOCK, data_dir: dataDir, storage: { migrate: false } });
    const run = await runCli(['start', '--config', config], {
      env: { PORT: '0', SWITCHYARD_MASTER_KEY: newMasterKey() },
    });
    assert.equal(run.code, 1, run.stderr);
    assert.match(
      run.stderr,
      new RegExp(
        `database schema is out of date: ${MIGRATION_NAMES.length} of ${MIGRATION_NAMES.length} migrations not applied \\(empty database;`,
      ),
    );
    assert.match(run.stderr, /run `switchyard migrate` first/);
    assert.deepEqual(await pendingIn(dataDir), [...MIGRATION_NAMES]);
  });

  it('refuses a schema one release behind, then serves once `switchyard migrate` has run', async () => {
    const dataDir = tempDir();
    await databaseOneReleaseBehind(dataDir);
    const configPath = writeConfig({ ...MOCK, data_dir: dataDir }, tempDir());
    const masterKey = newMasterKey();
    // The environment switch the Kubernetes Deployment uses.
    const env = { PORT: '0', SWITCHYARD_MASTER_KEY: masterKey, SWITCHYARD_MIGRATE: 'false' };

    const refused = await runCli(['start', '--config', configPath], { env });
    assert.equal(refused.code, 1, refused.stderr);
    assert.match(refused.stderr, new RegExp(`1 of ${MIGRATION_NAMES.length} migrations not applied`));
    assert.match(
      refused.stderr,
      new RegExp(`at ${MIGRATION_NAMES.at(-2)}; this version needs ${MIGRATION_NAMES.at(-1)}`),
    );
    assert.deepEqual(await pendingIn(dataDir), [MIGRATION_NAMES.at(-1)]);

    const migrated = await runCli(['migrate', '--config', configPath]);
    assert.equal(migrated.code, 0, migrated.stderr);
    assert.deepEqual(JSON.parse(migrated.stdout), {
      applied: [MIGRATION_NAMES.at(-1)],
      schema: MIGRATION_NAMES.at(-1),
    });
    const again = await runCli(['migrate', '--config', configPath]);
    assert.equal(again.code, 0, again.stderr);
    assert.deepEqual(JSON.parse(again.stdout).applied, []);
    assert.match(again.stderr, /schema already current/);

    const gateway = await spawnGateway({
      config: { ...MOCK },
      dataDir,
      masterKey,
      env: { SWITCHYARD_MIGRATE: 'false' },
    });
    try {
      assert.equal(await chatStatus(gateway, masterKey), 200);
    } finally {
      gateway.kill('SIGTERM');
      assert.equal(await gateway.exited, 0);
    }
  });

  it('`switchyard migrate` on a fresh database applies every migration', async () => {
    const dataDir = tempDir();
    const run = await runCli([
      'migrate',
      '--config',
      writeConfig({ ...MOCK, data_dir: join(dataDir, 'data') }),
    ]);
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(JSON.parse(run.stdout).applied, [...MIGRATION_NAMES]);
    assert.deepEqual(await pendingIn(join(dataDir, 'data')), []);
  });
});
