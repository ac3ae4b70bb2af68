/**
 * Backup and disaster recovery of the SQL store, on SQLite and PostgreSQL:
 * keys, a team and ledger rows are written, `switchyard backup` runs while the
 * gateway serves traffic, the data is destroyed, `switchyard restore` puts it
 * back, and a gateway started on it has everything: the key authenticates,
 * the team and the usage are there. Restore refuses to replace data unless
 * told to, and a damaged or foreign file is refused before anything changes.
 */
import assert from 'node:assert/strict';
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import pg from 'pg';
import { pollUntil } from '../fixtures/ops/proc.ts';
import {
  chatStatus,
  newMasterKey,
  runCli,
  type SpawnedGateway,
  spawnGateway,
  tempDir,
  writeConfig,
} from '../helpers/gateway.ts';
import { createPostgresDatabase, testPostgresUrl } from '../helpers/services.ts';

async function admin<T>(
  gw: SpawnedGateway,
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; json: T }> {
  const res = await fetch(`${gw.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${gw.masterKey}`, 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: res.status, json: (await res.json()) as T };
}

async function usageOf(gw: SpawnedGateway, keyId: string): Promise<number> {
  const { json } = await admin<{ data: Array<{ key_id: string; requests: number }> }>(
    gw,
    'GET',
    '/admin/usage?group_by=key',
  );
  return json.data.find((row) => row.key_id === keyId)?.requests ?? 0;
}

async function stop(gw: SpawnedGateway): Promise<void> {
  gw.kill('SIGTERM');
  assert.equal(await gw.exited, 0);
}

interface Setup {
  /** Config for both the gateways and the CLI (one data dir, one database). */
  config: Record<string, unknown>;
  env: Record<string, string>;
  destroy(): Promise<void>;
}

async function pgQuery(url: string, text: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(text);
  } finally {
    await client.end();
  }
}

const setups: Record<string, () => Promise<Setup>> = {
  sqlite: async () => {
    const dataDir = tempDir('switchyard-backup-');
    return {
      config: { data_dir: dataDir },
      env: {},
      // The whole data dir: database, its WAL and shared-memory files, the spool.
      destroy: async () => rmSync(dataDir, { recursive: true, force: true }),
    };
  },
  postgres: async () => {
    const databaseUrl = await createPostgresDatabase(testPostgresUrl());
    return {
      config: { data_dir: tempDir('switchyard-backup-') },
      env: { DATABASE_URL: databaseUrl },
      destroy: () => pgQuery(databaseUrl, 'DROP SCHEMA public CASCADE; CREATE SCHEMA public'),
    };
  },
};

for (const [dialect, setUp] of Object.entries(setups)) {
  describe(`backup and restore on ${dialect}`, () => {
    test('a backup taken while serving restores keys, teams and the ledger after the data is lost', async () => {
      const { config, env, destroy } = await setUp();
      const masterKey = newMasterKey();
      const gatewayConfig = {
        ...config,
        providers: { mock: { type: 'mock' } },
        models: { mock: { targets: [{ provider: 'mock', model: 'mock-1' }] } },
        ledger: { flush_interval_ms: 50 },
      };
      const configPath = writeConfig(gatewayConfig);
      const cli = (args: string[]) =>
        runCli([...args, '--config', configPath], { env: { ...env, SWITCHYARD_MASTER_KEY: masterKey } });
      const backupFile = join(tempDir('switchyard-backup-out-'), `switchyard.${dialect}.backup`);

      const first = await spawnGateway({
        config: gatewayConfig,
        masterKey,
        env,
        dataDir: config['data_dir'] as string,
      });
      const team = await admin<{ id: string }>(first, 'POST', '/admin/teams', { name: 'recovered team' });
      assert.equal(team.status, 201);
      const key = await admin<{ id: string; key: string }>(first, 'POST', '/admin/keys', {
        name: 'recovered key',
        team_id: team.json.id,
      });
      assert.equal(key.status, 201);
      for (let i = 0; i < 3; i++) assert.equal(await chatStatus(first, key.json.key), 200);
      await pollUntil('the ledger rows are stored', async () => (await usageOf(first, key.json.id)) === 3);

      // Online: requests keep flowing while the backup runs.
      let serving = true;
      const during: number[] = [];
      const traffic = (async () => {
        while (serving) during.push(await chatStatus(first, key.json.key));
      })();
      const backup = await cli(['backup', '--out', backupFile]);
      serving = false;
      await traffic;
      assert.equal(backup.code, 0, backup.stderr);
      const written = JSON.parse(backup.stdout) as { format: string; file: string; bytes: number };
      assert.equal(written.format, dialect === 'sqlite' ? 'sqlite' : 'pg_dump');
      assert.ok(written.bytes > 0);
      assert.deepEqual(
        during.filter((s) => s !== 200),
        [],
        'requests during the backup were answered',
      );
      // An existing file is not overwritten by accident.
      const again = await cli(['backup', '--out', backupFile]);
      assert.equal(again.code, 1);
      assert.match(again.stderr, /exists; --force to overwrite it/);
      await stop(first);

      // Disaster: the data is gone.
      await destroy();

      // A file that is no backup is refused.
      const bogus = join(tempDir(), 'not-a-backup');
      writeFileSync(bogus, 'hello');
      const refused = await cli(['restore', bogus]);
      assert.equal(refused.code, 1);
      assert.match(refused.stderr, /neither a SQLite backup nor a pg_dump/);

      const restore = await cli(['restore', backupFile]);
      assert.equal(restore.code, 0, restore.stderr);
      assert.equal((JSON.parse(restore.stdout) as { format: string }).format, written.format);
      // Restoring over data needs --force.
      const over = await cli(['restore', backupFile]);
      assert.equal(over.code, 1);
      assert.match(over.stderr, /--force to replace/);
      assert.equal((await cli(['restore', backupFile, '--force'])).code, 0);
      if (dialect === 'sqlite') assert.ok(existsSync(join(config['data_dir'] as string, 'switchyard.db')));

      const second = await spawnGateway({
        config: gatewayConfig,
        masterKey,
        env,
        dataDir: config['data_dir'] as string,
      });
      try {
        const teams = await admin<{ data: Array<{ id: string; name: string }> }>(
          second,
          'GET',
          '/admin/teams',
        );
        assert.deepEqual(
          teams.json.data.map((t) => [t.id, t.name]),
          [[team.json.id, 'recovered team']],
        );
        // The three requests before the backup, and those during it that the snapshot caught.
        const restored = await usageOf(second, key.json.id);
        assert.ok(
          restored >= 3 && restored <= 3 + during.length,
          `${restored} requests in the restored ledger`,
        );
        assert.equal(await chatStatus(second, key.json.key), 200, 'the restored key authenticates');
      } finally {
        await stop(second);
      }
    });
  });
}
