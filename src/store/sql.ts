/**
 * One SQL layer (Kysely) over SQLite (`node:sqlite`, the default) and
 * PostgreSQL (`pg`), chosen by `DATABASE_URL`.
 *
 * Connection strings carry passwords; nothing here ever puts one in a
 * description, a log line or an error message (see `maskDatabaseUrl`).
 */
import { createRequire } from 'node:module';
import { isAbsolute, join } from 'node:path';
import { Kysely, PostgresDialect, SqliteDialect, sql } from 'kysely';
import type pg from 'pg';
import type { Schema } from './schema.ts';
import { openSqlite } from './sqlite-driver.ts';

export type SqlDialectName = 'sqlite' | 'postgres';

export interface Database {
  readonly db: Kysely<Schema>;
  /** A read replica when configured (round-robin), else the primary. Reads may lag writes. */
  readonly readDb: Kysely<Schema>;
  /**
   * Runs a read that may lag writes (admin listings, usage reports) on the
   * next read replica that is up, round robin; a replica that cannot be
   * reached is skipped for 30 s and the read goes to the next, or to the
   * primary. Without replicas, on the primary.
   */
  read<T>(query: (db: Kysely<Schema>) => Promise<T>): Promise<T>;
  readonly dialect: SqlDialectName;
  /** e.g. `sqlite ./data/switchyard.db` or `postgres 127.0.0.1:5432/db`; never includes a password. */
  readonly description: string;
  /** The SQLite file, for components that open their own connection (the ledger's writer). */
  readonly sqlitePath?: string;
  ping(signal?: AbortSignal): Promise<void>;
  /** Each read replica by its description (no password) and a ping of it; none without replicas. */
  readonly replicas?: readonly { description: string; ping(signal?: AbortSignal): Promise<void> }[];
  close(): Promise<void>;
}

export interface OpenDatabaseOptions {
  /** `DATABASE_URL`; unset or empty means SQLite at `<dataDir>/switchyard.db`. */
  url?: string | undefined;
  dataDir: string;
  /** PostgreSQL read replicas (`DATABASE_REPLICA_URLS`); ignored for SQLite. */
  replicaUrls?: string[];
  /**
   * Connections per PostgreSQL pool (the primary's).
   * @default 10
   */
  poolSize?: number;
  /**
   * Connections per read replica's pool.
   * @default 10
   */
  replicaPoolSize?: number;
  logger?: { warn(obj: object, msg: string): void };
}

/** Raised when the database cannot be reached or the URL is unusable; the message is safe to log. */
export class DatabaseConnectError extends Error {
  override readonly name = 'DatabaseConnectError';
  /** The driver's error code (e.g. `ECONNREFUSED`, PostgreSQL SQLSTATE `28P01`), when there is one. */
  readonly code: string | undefined;

  constructor(message: string, code?: string) {
    super(message);
    this.code = code;
  }
}

export type ParsedDatabaseUrl =
  | { dialect: 'sqlite'; path: string }
  | { dialect: 'postgres'; connectionString: string };

/** Resolves `DATABASE_URL` into a dialect and a target. */
export function parseDatabaseUrl(url: string | undefined, dataDir: string): ParsedDatabaseUrl {
  const trimmed = url?.trim() ?? '';
  if (trimmed === '') return { dialect: 'sqlite', path: join(dataDir, 'switchyard.db') };
  const lower = trimmed.toLowerCase();
  if (lower.startsWith('postgres://') || lower.startsWith('postgresql://')) {
    try {
      new URL(trimmed);
    } catch {
      // URL errors from Node carry the input (password included); never rethrow them.
      throw new DatabaseConnectError(`invalid DATABASE_URL: ${maskDatabaseUrl(trimmed)} is not a valid URL`);
    }
    return { dialect: 'postgres', connectionString: trimmed };
  }
  for (const scheme of ['sqlite:', 'file:']) {
    if (!lower.startsWith(scheme)) continue;
    // `sqlite:///abs/file.db` is absolute, `sqlite:rel.db` and `sqlite://rel.db` are relative.
    let path = trimmed.slice(scheme.length);
    if (path.startsWith('//')) path = path.slice(2);
    const query = path.indexOf('?');
    if (query >= 0) path = path.slice(0, query);
    path = decodeURIComponent(path);
    if (path === '')
      throw new DatabaseConnectError(`invalid DATABASE_URL: ${maskDatabaseUrl(trimmed)} names no file`);
    return { dialect: 'sqlite', path };
  }
  throw new DatabaseConnectError(
    `unsupported DATABASE_URL ${maskDatabaseUrl(trimmed)}: expected postgres://, postgresql://, sqlite: or file:`,
  );
}

/** Replaces any password in a URL with `***`; works on strings that do not parse as URLs too. */
export function maskDatabaseUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password !== '') {
      parsed.password = '***';
      return parsed.toString();
    }
    return url.replace(/([?&]password=)[^&]*/gi, '$1***');
  } catch {
    return url.replace(/(\/\/[^/@]*?:)[^/]*@/, '$1***@').replace(/([?&]password=)[^&]*/gi, '$1***');
  }
}

function describePostgres(connectionString: string): string {
  const url = new URL(connectionString);
  const host = url.hostname === '' ? 'localhost' : url.hostname;
  const port = url.port === '' ? '5432' : url.port;
  const db = decodeURIComponent(url.pathname.replace(/^\//, ''));
  return `postgres ${host}:${port}/${db === '' ? decodeURIComponent(url.username) : db}`;
}

// int8 (bigint: our epoch-ms and micro-dollar columns, COUNT(*)) and numeric
// (SUM over bigint) arrive from pg as strings. Parsing them to numbers makes
// PostgreSQL rows look like SQLite's; our values stay far below 2^53.
const PG_INT8_OID = 20;
const PG_NUMERIC_OID = 1700;
function pgTypes(driver: typeof pg): pg.CustomTypesConfig {
  return {
    getTypeParser: ((oid: number, format?: 'text' | 'binary') => {
      if ((oid === PG_INT8_OID || oid === PG_NUMERIC_OID) && format !== 'binary') {
        return (value: string) => Number(value);
      }
      return driver.types.getTypeParser(oid, format ?? 'text');
    }) as pg.CustomTypesConfig['getTypeParser'],
  };
}

interface Replica {
  db: Kysely<Schema>;
  description: string;
  /** Skipped until then (epoch ms) after it could not be reached. */
  downUntil: number;
}

/** How long a replica that could not be reached is left alone before it is tried again. */
const REPLICA_RETRY_MS = 30_000;

/**
 * Whether a query failed because its server could not be used (refused, timed
 * out, shut down, too many connections, in recovery and not ready, behind the
 * primary's schema), not because of the query: only then is another server
 * worth asking.
 */
function isConnectionFailure(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === 'string') {
    // SQLSTATE classes 08 (connection), 53 (resources), 57 (operator intervention);
    // 42P01 (no such table): a replica that has not replayed a migration yet.
    if (/^(08|53|57)/.test(code) || code === '42P01') return true;
    if (/^E[A-Z]+$/.test(code)) return true; // ECONNREFUSED, ETIMEDOUT, ECONNRESET…
    return false;
  }
  return error instanceof Error && /connect|terminat|timeout/i.test(error.message);
}

/** `pg` is loaded on first use: a gateway on SQLite (the default) never pays its memory. */
const requireLazily = createRequire(import.meta.url);
let pgDriver: typeof pg | undefined;
function pgModule(): typeof pg {
  pgDriver ??= requireLazily('pg') as typeof pg;
  return pgDriver;
}

function createPgPool(connectionString: string, options: OpenDatabaseOptions, description: string): pg.Pool {
  const driver = pgModule();
  const pool = new driver.Pool({
    connectionString,
    max: options.poolSize ?? 10,
    connectionTimeoutMillis: 5000,
    idleTimeoutMillis: 30_000,
    application_name: 'switchyard',
    types: pgTypes(driver),
  });
  // `pg` emits 'error' on a client whose connection dies (a restart, a failover,
  // pg_terminate_backend). The pool listens only while the client is idle in it
  // and then re-emits on itself; a checked-out client (a query running, a
  // migration's connection held) has no listener of its own, and an unhandled
  // 'error' event kills the process. So every client gets one for life, which is
  // also where the failure is told (once); the queries on it fail to their callers,
  // and the pool drops the client when it comes back.
  pool.on('connect', (client) => {
    let told = false; // a server's FATAL message is followed by the socket's end: one failure
    client.on('error', (err: Error & { code?: string }) => {
      if (told) return;
      told = true;
      options.logger?.warn(
        { db: description, code: err.code, err: err.message },
        'database connection failed',
      );
    });
  });
  // The pool's own re-emit for an idle client: already told above.
  pool.on('error', () => {});
  return pool;
}

function connectErrorFrom(
  err: unknown,
  description: string,
  secret: string | undefined,
): DatabaseConnectError {
  const raw = err instanceof Error ? err.message : String(err);
  const message = secret ? raw.replaceAll(secret, '***') : raw;
  const code = typeof err === 'object' && err !== null && 'code' in err ? String(err.code) : undefined;
  return new DatabaseConnectError(
    `cannot connect to ${description}: ${message || code || 'unknown error'}`,
    code,
  );
}

/**
 * Opens the database named by `url` (default SQLite under `dataDir`) and checks
 * it answers. Failures are `DatabaseConnectError`s with masked messages.
 */
export async function openDatabase(options: OpenDatabaseOptions): Promise<Database> {
  const target = parseDatabaseUrl(options.url, options.dataDir);
  if (target.dialect === 'sqlite') return openSqliteDatabase(target.path);
  return openPostgresDatabase(target.connectionString, options);
}

async function openSqliteDatabase(path: string): Promise<Database> {
  const description = `sqlite ${isAbsolute(path) || path.startsWith('.') || path === ':memory:' ? path : `./${path}`}`;
  let db: Kysely<Schema>;
  try {
    const sqlite = openSqlite(path);
    db = new Kysely<Schema>({ dialect: new SqliteDialect({ database: sqlite }) });
    await sql`select 1`.execute(db);
  } catch (err) {
    throw connectErrorFrom(err, description, undefined);
  }
  return {
    db,
    readDb: db,
    read: (query) => query(db),
    dialect: 'sqlite',
    description,
    sqlitePath: path,
    async ping(signal) {
      await sql`select 1`.execute(db, { signal });
    },
    async close() {
      await db.destroy();
    },
  };
}

async function openPostgresDatabase(
  connectionString: string,
  options: OpenDatabaseOptions,
): Promise<Database> {
  const description = describePostgres(connectionString);
  const password = decodeURIComponent(new URL(connectionString).password) || undefined;
  const pool = createPgPool(connectionString, options, description);
  const db = new Kysely<Schema>({ dialect: new PostgresDialect({ pool }) });
  try {
    await sql`select 1`.execute(db);
  } catch (err) {
    await db.destroy().catch(() => {});
    throw connectErrorFrom(err, description, password);
  }

  const replicas: Replica[] = [];
  for (const replicaUrl of options.replicaUrls ?? []) {
    const parsed = parseDatabaseUrl(replicaUrl, options.dataDir);
    if (parsed.dialect !== 'postgres') {
      throw new DatabaseConnectError(`replica URL ${maskDatabaseUrl(replicaUrl)} is not a PostgreSQL URL`);
    }
    const replicaDescription = describePostgres(parsed.connectionString);
    const replicaPool = createPgPool(
      parsed.connectionString,
      { ...options, poolSize: options.replicaPoolSize ?? options.poolSize },
      replicaDescription,
    );
    replicas.push({
      db: new Kysely<Schema>({ dialect: new PostgresDialect({ pool: replicaPool }) }),
      description: replicaDescription,
      downUntil: 0,
    });
  }
  let next = 0;

  return {
    db,
    get readDb() {
      if (replicas.length === 0) return db;
      next = (next + 1) % replicas.length;
      return replicas[next]?.db ?? db;
    },
    async read(query) {
      for (let tried = 0; tried < replicas.length; tried++) {
        next = (next + 1) % replicas.length;
        const replica = replicas[next]!;
        if (replica.downUntil > Date.now()) continue;
        try {
          return await query(replica.db);
        } catch (error) {
          if (!isConnectionFailure(error)) throw error;
          replica.downUntil = Date.now() + REPLICA_RETRY_MS;
          options.logger?.warn(
            { db: replica.description, code: (error as { code?: string }).code },
            'read replica unreachable; reading elsewhere for 30 s',
          );
        }
      }
      return query(db);
    },
    dialect: 'postgres',
    description: replicas.length > 0 ? `${description} (+${replicas.length} replicas)` : description,
    async ping(signal) {
      await sql`select 1`.execute(db, { signal });
    },
    replicas: replicas.map((replica) => ({
      description: replica.description,
      async ping(signal?: AbortSignal) {
        await sql`select 1`.execute(replica.db, { signal });
      },
    })),
    async close() {
      await Promise.all([db.destroy(), ...replicas.map((r) => r.db.destroy())]);
    },
  };
}
