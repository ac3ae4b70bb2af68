/**
 * Many gateway processes starting at once against one fresh database must
 * migrate exactly once, and none may go on before the schema is current.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { MIGRATION_NAMES } from '../../src/store/migrations.ts';
import { createPostgresDatabase, testPostgresUrl } from '../helpers/services.ts';

const FIXTURE = join(import.meta.dirname, '..', 'fixtures', 'migrate-once.ts');

interface ChildResult {
  code: number | null;
  applied: string[];
  version: string | null;
  stderr: string;
}

interface Child {
  ready: Promise<void>;
  go(): void;
  done: Promise<ChildResult>;
}

function startChild(env: Record<string, string>): Child {
  const proc = spawn(process.execPath, [FIXTURE], {
    env: { ...process.env, ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  let markReady: () => void = () => {};
  const ready = new Promise<void>((resolve) => {
    markReady = resolve;
  });
  proc.stdout.setEncoding('utf8');
  proc.stderr.setEncoding('utf8');
  proc.stdout.on('data', (chunk: string) => {
    stdout += chunk;
    if (stdout.startsWith('ready\n')) markReady();
  });
  proc.stderr.on('data', (chunk: string) => {
    stderr += chunk;
  });
  const done = new Promise<ChildResult>((resolve) => {
    proc.once('exit', (code) => {
      // A child that died before "ready" must not leave the test waiting on it.
      markReady();
      const last = stdout.trim().split('\n').at(-1) ?? '';
      let parsed: { applied: string[]; version: string | null } = { applied: [], version: null };
      try {
        parsed = JSON.parse(last) as typeof parsed;
      } catch {}
      resolve({ code, applied: parsed.applied, version: parsed.version, stderr });
    });
  });
  return {
    ready,
    go: () => {
      proc.stdin.end('go\n');
    },
    done,
  };
}

async function runAtOnce(count: number, env: Record<string, string>): Promise<ChildResult[]> {
  const children = Array.from({ length: count }, () => startChild(env));
  // Every child has connected before any migrates, so they really race.
  await Promise.all(children.map((c) => c.ready));
  for (const c of children) c.go();
  return Promise.all(children.map((c) => c.done));
}

function assertMigratedExactlyOnce(results: ChildResult[]): void {
  for (const r of results) assert.equal(r.code, 0, `a child failed:\n${r.stderr}`);
  const appliers = results.filter((r) => r.applied.length > 0);
  assert.equal(appliers.length, 1, 'exactly one process applies the migrations');
  assert.deepEqual(appliers[0]?.applied, [...MIGRATION_NAMES]);
  const latest = MIGRATION_NAMES.at(-1);
  for (const r of results) assert.equal(r.version, latest, 'every process sees the latest schema');
}

describe('concurrent migrations', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'switchyard-migrate-'));
  after(() => rmSync(dataDir, { recursive: true, force: true }));

  it('10 processes against one fresh PostgreSQL database migrate exactly once', async () => {
    const url = await createPostgresDatabase(testPostgresUrl());
    const results = await runAtOnce(10, { DATABASE_URL: url, DATA_DIR: dataDir });
    assertMigratedExactlyOnce(results);
  });

  it('4 processes on one fresh SQLite file migrate exactly once', async () => {
    const results = await runAtOnce(4, { DATABASE_URL: '', DATA_DIR: join(dataDir, 'sqlite') });
    assertMigratedExactlyOnce(results);
  });
});
