/**
 * Backup and restore of the SQL store (`switchyard backup` / `switchyard restore`).
 *
 * SQLite: SQLite's online backup API (node:sqlite `backup()`), page by page
 * from a live database: a gateway may keep serving and writing meanwhile, the
 * copy is one consistent snapshot. It is written beside the target and renamed
 * into place once checked (`PRAGMA integrity_check`), so a failed backup never
 * leaves a half file under the name. Restore runs the same API the other way,
 * into the database file, which also resets its WAL (copying the file over a
 * database with a `-wal` beside it would corrupt it).
 *
 * PostgreSQL: `pg_dump --format=custom` (a consistent snapshot taken in one
 * transaction, without blocking writers) and `pg_restore --clean --if-exists
 * --single-transaction` (all or nothing). The client binaries come from
 * Debian's /usr/lib/postgresql/<version>/bin (the newest: pg_dump must not be
 * older than the server), else from PATH. The password goes through PGPASSWORD, never argv,
 * where `ps` would show it.
 *
 * What a backup holds: keys (hashed), teams, the ledger, jobs, batches, files
 * and the audit log: everything in the database. Not the master key when it
 * was generated into the data dir (`master.key`, a secret to keep apart), and
 * not ledger rows still in the spool (flushed within a second while running).
 */
import { execFile } from 'node:child_process';
import {
  closeSync,
  existsSync,
  openSync,
  readdirSync,
  readSync,
  renameSync,
  rmSync,
  statSync,
} from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { delimiter, dirname, join } from 'node:path';
import { DatabaseSync, backup as sqliteBackup } from 'node:sqlite';
import { promisify } from 'node:util';
import { maskDatabaseUrl, type ParsedDatabaseUrl } from './sql.ts';

const execFileAsync = promisify(execFile);

export type BackupFormat = 'sqlite' | 'pg_dump';

export interface BackupResult {
  format: BackupFormat;
  file: string;
  bytes: number;
}

export class BackupError extends Error {
  override readonly name = 'BackupError';
}

/** Writes a backup of `database` to `file` (which must not exist unless `force`). */
export async function backupDatabase(
  database: ParsedDatabaseUrl,
  file: string,
  options: { force?: boolean } = {},
): Promise<BackupResult> {
  if (existsSync(file) && !options.force) throw new BackupError(`${file} exists; --force to overwrite it`);
  await mkdir(dirname(file), { recursive: true });
  const partial = `${file}.partial-${process.pid}`;
  try {
    if (database.dialect === 'sqlite') {
      if (!existsSync(database.path)) throw new BackupError(`no SQLite database at ${database.path}`);
      const source = new DatabaseSync(database.path, { readOnly: true, timeout: 5000 });
      try {
        await sqliteBackup(source, partial);
      } finally {
        source.close();
      }
      assertSqliteIntact(partial);
    } else {
      const { url, env } = withoutPassword(database.connectionString);
      await runPgTool(
        'pg_dump',
        ['--format=custom', '--no-owner', '--no-privileges', `--file=${partial}`, url],
        env,
      );
    }
    renameSync(partial, file);
  } catch (error) {
    rmSync(partial, { force: true });
    throw error;
  }
  return { format: database.dialect === 'sqlite' ? 'sqlite' : 'pg_dump', file, bytes: statSync(file).size };
}

/**
 * Restores `file` into `database`. Stop every gateway and worker using it
 * first: they would go on with what they had cached. A database that already
 * holds data is replaced only with `force`.
 */
export async function restoreDatabase(
  database: ParsedDatabaseUrl,
  file: string,
  options: { force?: boolean } = {},
): Promise<{ format: BackupFormat }> {
  if (!existsSync(file)) throw new BackupError(`file not found: ${file}`);
  const format = backupFormatOf(file);
  if (database.dialect === 'sqlite') {
    if (format !== 'sqlite') {
      throw new BackupError(`${file} is a PostgreSQL dump; restore it into a PostgreSQL DATABASE_URL`);
    }
    assertSqliteIntact(file);
    if (existsSync(database.path) && statSync(database.path).size > 0 && !options.force) {
      throw new BackupError(
        `${database.path} exists; --force to replace it (stop every gateway using it first)`,
      );
    }
    await mkdir(dirname(database.path), { recursive: true });
    const source = new DatabaseSync(file, { readOnly: true });
    try {
      await sqliteBackup(source, database.path);
    } finally {
      source.close();
    }
    return { format };
  }
  if (format !== 'pg_dump') {
    throw new BackupError(`${file} is a SQLite backup; restore it into a SQLite DATABASE_URL`);
  }
  const { url, env } = withoutPassword(database.connectionString);
  if (!options.force && (await pgHasTables(url, env))) {
    throw new BackupError(
      `${maskDatabaseUrl(url)} has tables; --force to replace them (stop every gateway first)`,
    );
  }
  await runPgTool(
    'pg_restore',
    [
      '--clean',
      '--if-exists',
      '--no-owner',
      '--no-privileges',
      '--single-transaction',
      '--exit-on-error',
      `--dbname=${url}`,
      file,
    ],
    env,
  );
  return { format };
}

/** By the file's first bytes: SQLite's header or pg_dump's custom-format magic. */
export function backupFormatOf(file: string): BackupFormat {
  const head = Buffer.alloc(16);
  const fd = openSync(file, 'r');
  try {
    readSync(fd, head, 0, 16, 0);
  } finally {
    closeSync(fd);
  }
  if (head.toString('latin1') === 'SQLite format 3\0') return 'sqlite';
  if (head.subarray(0, 5).toString('latin1') === 'PGDMP') return 'pg_dump';
  throw new BackupError(`${file} is neither a SQLite backup nor a pg_dump custom-format file`);
}

function assertSqliteIntact(file: string): void {
  const db = new DatabaseSync(file, { readOnly: true });
  try {
    const row = db.prepare('PRAGMA integrity_check').get() as { integrity_check?: string } | undefined;
    if (row?.integrity_check !== 'ok') {
      throw new BackupError(
        `${file} failed SQLite's integrity check: ${row?.integrity_check ?? 'no answer'}`,
      );
    }
  } finally {
    db.close();
  }
}

/** The URL without its password, and the password for PGPASSWORD. */
function withoutPassword(connectionString: string): { url: string; env: NodeJS.ProcessEnv } {
  const url = new URL(connectionString);
  const password = decodeURIComponent(url.password);
  url.password = '';
  return { url: url.toString(), env: password === '' ? {} : { PGPASSWORD: password } };
}

async function pgHasTables(url: string, env: NodeJS.ProcessEnv): Promise<boolean> {
  const { stdout } = await runPgTool(
    'psql',
    [
      '--no-psqlrc',
      '--tuples-only',
      '--no-align',
      `--dbname=${url}`,
      '--command=select count(*) from information_schema.tables where table_schema = current_schema()',
    ],
    env,
  );
  return Number(stdout.trim()) > 0;
}

async function runPgTool(
  tool: 'pg_dump' | 'pg_restore' | 'psql',
  args: string[],
  env: NodeJS.ProcessEnv,
): Promise<{ stdout: string }> {
  const binary = findPgTool(tool);
  try {
    const { stdout } = await execFileAsync(binary, args, {
      env: { ...process.env, ...env },
      maxBuffer: 16 * 1024 * 1024,
    });
    return { stdout };
  } catch (error) {
    const stderr = String((error as { stderr?: unknown }).stderr ?? (error as Error).message);
    // The tools echo connection strings in some errors: never show a password.
    const password = env['PGPASSWORD'];
    const text = password ? stderr.replaceAll(password, '***') : stderr;
    throw new BackupError(`${tool} failed: ${text.trim().split('\n').slice(0, 5).join('\n')}`);
  }
}

/** `tool` on PATH, else in the newest /usr/lib/postgresql/<version>/bin. */
function findPgTool(tool: string): string {
  const root = '/usr/lib/postgresql';
  if (existsSync(root)) {
    const versions = readdirSync(root)
      .filter((v) => existsSync(join(root, v, 'bin', tool)))
      .sort((a, b) => Number(b) - Number(a));
    if (versions[0] !== undefined) return join(root, versions[0], 'bin', tool);
  }
  for (const dir of (process.env['PATH'] ?? '').split(delimiter)) {
    if (dir !== '' && existsSync(join(dir, tool))) return join(dir, tool);
  }
  throw new BackupError(`${tool} not found: install PostgreSQL's client tools (Debian: postgresql-client)`);
}
