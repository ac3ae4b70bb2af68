/**
 * Schema migrations, in code, identical on SQLite and PostgreSQL.
 *
 * Add a migration by appending a new `NNNN_name` entry; never edit one that
 * has shipped. Types are chosen to mean the same on both databases: `text`,
 * `integer`, `bigint` (SQLite stores it as a 64-bit integer), `double precision`
 * (SQLite: REAL, 8 bytes; PostgreSQL `real` would be 4 bytes).
 */
import { type Kysely, sql } from 'kysely';
import { type Migration, type MigrationProvider, Migrator } from 'kysely/migration';
import type { Schema } from './schema.ts';
import type { Database } from './sql.ts';

// Migrations must not depend on the current `Schema` type: they describe the
// schema as it was when they were written.
type AnyDb = Kysely<unknown>;

export const MIGRATIONS: Record<string, Migration> = {
  '0001_initial': {
    async up(db: AnyDb) {
      await db.schema
        .createTable('virtual_keys')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('key_hash', 'text', (c) => c.notNull().unique())
        .addColumn('key_hint', 'text', (c) => c.notNull())
        .addColumn('tier', 'text')
        .addColumn('allowed_models', 'text')
        .addColumn('metadata', 'text', (c) => c.notNull().defaultTo('{}'))
        .addColumn('expires_at', 'bigint')
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('revoked_at', 'bigint')
        .execute();

      await db.schema
        .createTable('usage_ledger')
        .addColumn('request_id', 'text', (c) => c.notNull())
        .addColumn('attempt', 'integer', (c) => c.notNull())
        .addColumn('key_id', 'text')
        .addColumn('route', 'text', (c) => c.notNull())
        .addColumn('model_requested', 'text', (c) => c.notNull())
        .addColumn('provider', 'text')
        .addColumn('model_used', 'text')
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('http_status', 'integer', (c) => c.notNull())
        .addColumn('error_code', 'text')
        .addColumn('stream', 'integer', (c) => c.notNull())
        .addColumn('prompt_tokens', 'bigint', (c) => c.notNull())
        .addColumn('completion_tokens', 'bigint', (c) => c.notNull())
        .addColumn('cached_tokens', 'bigint', (c) => c.notNull())
        .addColumn('reasoning_tokens', 'bigint', (c) => c.notNull())
        .addColumn('usage_source', 'text', (c) => c.notNull())
        .addColumn('latency_ms', 'double precision', (c) => c.notNull())
        .addColumn('ttft_ms', 'double precision')
        .addColumn('cache_status', 'text', (c) => c.notNull())
        .addColumn('cost_micros', 'bigint')
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addPrimaryKeyConstraint('usage_ledger_pk', ['request_id', 'attempt'])
        .execute();
      await db.schema
        .createIndex('usage_ledger_key_created_idx')
        .on('usage_ledger')
        .columns(['key_id', 'created_at'])
        .execute();
      await db.schema
        .createIndex('usage_ledger_created_idx')
        .on('usage_ledger')
        .column('created_at')
        .execute();
    },
  },
  // The ledger keys rows on the gateway's own request id; a client's
  // x-request-id is kept beside it for correlation. Keying on the client's id
  // let two requests sharing one collide, and the second went unbilled.
  '0002_client_request_id': {
    async up(db: AnyDb) {
      await db.schema.alterTable('usage_ledger').addColumn('client_request_id', 'text').execute();
      await db.schema
        .createIndex('usage_ledger_client_request_idx')
        .on('usage_ledger')
        .column('client_request_id')
        .execute();
    },
  },
  // The response cache's L3 tier (`cache.sql`). Indexes serve the expiry
  // sweep (expires_at) and invalidation by model, model and key, or key alone.
  '0003_response_cache': {
    async up(db: AnyDb) {
      await db.schema
        .createTable('response_cache')
        .addColumn('key', 'text', (c) => c.primaryKey())
        .addColumn('model', 'text', (c) => c.notNull())
        .addColumn('scope', 'text', (c) => c.notNull())
        .addColumn('body', 'text', (c) => c.notNull())
        .addColumn('stored_at', 'bigint', (c) => c.notNull())
        .addColumn('expires_at', 'bigint', (c) => c.notNull())
        .addColumn('prompt_tokens', 'bigint', (c) => c.notNull())
        .addColumn('completion_tokens', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema
        .createIndex('response_cache_expires_idx')
        .on('response_cache')
        .column('expires_at')
        .execute();
      await db.schema
        .createIndex('response_cache_model_scope_idx')
        .on('response_cache')
        .columns(['model', 'scope'])
        .execute();
      await db.schema.createIndex('response_cache_scope_idx').on('response_cache').column('scope').execute();
    },
  },
  // Most requests send no x-request-id, so most rows have no client id: a
  // partial index leaves those out, one B-tree insert fewer per ledger row
  // (~0.8 µs of the ~5.5 µs a SQLite row costs). Lookups by a client id
  // (`client_request_id = ?`) imply it is not null, so they still use it.
  '0004_client_request_partial_index': {
    async up(db: AnyDb) {
      await db.schema.dropIndex('usage_ledger_client_request_idx').execute();
      await db.schema
        .createIndex('usage_ledger_client_request_idx')
        .on('usage_ledger')
        .column('client_request_id')
        .where(sql.ref('client_request_id'), 'is not', null)
        .execute();
    },
  },
  // What a cached answer cost to compute: each hit reports it as saved.
  '0005_response_cache_cost': {
    async up(db: AnyDb) {
      await db.schema.alterTable('response_cache').addColumn('cost_micros', 'bigint').execute();
    },
  },
  '0006_key_limits': {
    async up(db: AnyDb) {
      // A key's own limits (JSON), over its tier's; null: the tier's alone.
      await db.schema.alterTable('virtual_keys').addColumn('limits', 'text').execute();
    },
  },
  '0007_key_budget': {
    async up(db: AnyDb) {
      // A key's spend caps (JSON: daily_usd, monthly_usd, total_usd); null: none.
      await db.schema.alterTable('virtual_keys').addColumn('budget', 'text').execute();
    },
  },
  '0008_teams': {
    async up(db: AnyDb) {
      await db.schema
        .createTable('teams')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('tier', 'text')
        .addColumn('limits', 'text')
        .addColumn('budget', 'text')
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .execute();
      // A key belongs to at most one team.
      await db.schema.alterTable('virtual_keys').addColumn('team_id', 'text').execute();
      await db.schema.createIndex('virtual_keys_team_idx').on('virtual_keys').column('team_id').execute();
    },
  },
  // The SQL job queue (src/jobs/sql-job-queue.ts). One index serves the
  // claim (queued jobs of a queue by priority, then add order), the lapsed
  // lease sweep (active jobs of a queue), counts per status and the oldest
  // queued job.
  '0009_jobs': {
    async up(db: AnyDb) {
      await db.schema
        .createTable('jobs')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('queue', 'text', (c) => c.notNull())
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('priority', 'integer', (c) => c.notNull())
        .addColumn('seq', 'bigint', (c) => c.notNull())
        .addColumn('payload', 'text', (c) => c.notNull())
        .addColumn('result', 'text')
        .addColumn('error', 'text')
        .addColumn('progress', 'text')
        .addColumn('attempts', 'integer', (c) => c.notNull())
        .addColumn('max_attempts', 'integer', (c) => c.notNull())
        .addColumn('backoff_ms', 'bigint', (c) => c.notNull())
        .addColumn('run_at', 'bigint', (c) => c.notNull())
        .addColumn('locked_until', 'bigint')
        .addColumn('lock_token', 'text')
        .addColumn('cancel_requested', 'integer', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('started_at', 'bigint')
        .addColumn('finished_at', 'bigint')
        .execute();
      await db.schema
        .createIndex('jobs_queue_status_idx')
        .on('jobs')
        .columns(['queue', 'status', 'priority desc', 'seq'])
        .execute();
    },
  },
  '0010_files_batches': {
    async up(db: AnyDb) {
      await db.schema
        .createTable('files')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('key_id', 'text', (c) => c.notNull())
        .addColumn('purpose', 'text', (c) => c.notNull())
        .addColumn('filename', 'text', (c) => c.notNull())
        .addColumn('bytes', 'bigint', (c) => c.notNull())
        .addColumn('lines', 'integer', (c) => c.notNull())
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('expires_at', 'bigint')
        .execute();
      await db.schema.createIndex('files_key_idx').on('files').columns(['key_id', 'created_at']).execute();
      await db.schema
        .createTable('file_chunks')
        .addColumn('file_id', 'text', (c) => c.notNull())
        .addColumn('seq', 'integer', (c) => c.notNull())
        .addColumn('data', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('file_chunks_pk', ['file_id', 'seq'])
        .execute();
      await db.schema
        .createTable('batches')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('key_id', 'text', (c) => c.notNull())
        .addColumn('endpoint', 'text', (c) => c.notNull())
        .addColumn('input_file_id', 'text', (c) => c.notNull())
        .addColumn('completion_window', 'text', (c) => c.notNull())
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('output_file_id', 'text')
        .addColumn('error_file_id', 'text')
        .addColumn('errors', 'text')
        .addColumn('metadata', 'text')
        .addColumn('total', 'integer', (c) => c.notNull())
        .addColumn('completed', 'integer', (c) => c.notNull())
        .addColumn('failed', 'integer', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('in_progress_at', 'bigint')
        .addColumn('finalizing_at', 'bigint')
        .addColumn('completed_at', 'bigint')
        .addColumn('failed_at', 'bigint')
        .addColumn('expires_at', 'bigint', (c) => c.notNull())
        .addColumn('expired_at', 'bigint')
        .addColumn('cancelling_at', 'bigint')
        .addColumn('cancelled_at', 'bigint')
        .execute();
      await db.schema
        .createIndex('batches_key_idx')
        .on('batches')
        .columns(['key_id', 'created_at'])
        .execute();
      await db.schema
        .createTable('batch_lines')
        .addColumn('batch_id', 'text', (c) => c.notNull())
        .addColumn('line', 'integer', (c) => c.notNull())
        .addColumn('ok', 'integer', (c) => c.notNull())
        .addColumn('output', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('batch_lines_pk', ['batch_id', 'line'])
        .execute();
    },
  },
  // Stored Responses API responses (src/store/responses-repo.ts).
  '0011_responses': {
    async up(db: AnyDb) {
      await db.schema
        .createTable('responses')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('key_id', 'text', (c) => c.notNull())
        .addColumn('previous_response_id', 'text')
        .addColumn('model', 'text', (c) => c.notNull())
        .addColumn('input_items', 'text', (c) => c.notNull())
        .addColumn('output_items', 'text', (c) => c.notNull())
        .addColumn('response', 'text', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('expires_at', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('responses_expires_idx').on('responses').column('expires_at').execute();
    },
  },
  // Admin actions (src/server/audit-log.ts): append-only, read newest first by id (UUIDv7).
  '0012_audit_log': {
    async up(db: AnyDb) {
      await db.schema
        .createTable('audit_log')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('at', 'bigint', (c) => c.notNull())
        .addColumn('actor', 'text', (c) => c.notNull())
        .addColumn('action', 'text', (c) => c.notNull())
        .addColumn('target_type', 'text', (c) => c.notNull())
        .addColumn('target_id', 'text')
        .addColumn('details', 'text', (c) => c.notNull())
        .addColumn('request_id', 'text')
        .execute();
      await db.schema.createIndex('audit_log_target_idx').on('audit_log').column('target_id').execute();
    },
  },
};

export const MIGRATION_NAMES: readonly string[] = Object.keys(MIGRATIONS).sort();

const provider: MigrationProvider = {
  async getMigrations() {
    return MIGRATIONS;
  },
};

// Arbitrary constant: the key of our PostgreSQL advisory lock.
const PG_MIGRATION_LOCK_KEY = 7_201_903_551;

/**
 * Brings the schema up to date. Safe to call from many processes at once:
 * exactly one applies the pending migrations and every caller returns only
 * once the schema is current.
 */
export async function migrate(database: Database): Promise<{ applied: string[] }> {
  return database.db.connection().execute(async (conn) => {
    if (database.dialect === 'postgres') {
      // Kysely's Migrator locks only around applying migrations; it creates its
      // own bookkeeping tables before that, unlocked, and relies on catching
      // "already exists" races. One session lock around the whole run removes the
      // race instead: a second process blocks here, then finds nothing to do.
      await sql`select pg_advisory_lock(${PG_MIGRATION_LOCK_KEY})`.execute(conn);
      try {
        return await runMigrator(conn);
      } finally {
        await sql`select pg_advisory_unlock(${PG_MIGRATION_LOCK_KEY})`.execute(conn);
      }
    }
    // SQLite: Kysely's Migrator takes no lock and runs SQLite migrations outside a
    // transaction. BEGIN IMMEDIATE takes the single write lock for the whole run
    // (another process waits up to busy_timeout), and makes it all-or-nothing.
    await sql`begin immediate`.execute(conn);
    try {
      const result = await runMigrator(conn);
      await sql`commit`.execute(conn);
      return result;
    } catch (err) {
      await sql`rollback`.execute(conn).catch(() => {});
      throw err;
    }
  });
}

async function runMigrator(db: Kysely<Schema>): Promise<{ applied: string[] }> {
  const migrator = new Migrator({ db, provider });
  const { error, results } = await migrator.migrateToLatest();
  if (error !== undefined) {
    const failed = results?.find((r) => r.status === 'Error')?.migrationName;
    throw new Error(`database migration ${failed ?? ''} failed: ${errorMessage(error)}`, { cause: error });
  }
  return { applied: (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName) };
}

/** The migrations this version has that the database has not applied, oldest first. */
export async function pendingMigrations(database: Database): Promise<string[]> {
  const migrations = await new Migrator({ db: database.db, provider }).getMigrations();
  return migrations
    .filter((m) => m.executedAt === undefined)
    .map((m) => m.name)
    .sort();
}

/** The name of the latest applied migration, or null on an empty database. */
export async function schemaVersion(database: Database): Promise<string | null> {
  const migrations = await new Migrator({ db: database.db, provider }).getMigrations();
  const applied = migrations.filter((m) => m.executedAt !== undefined).map((m) => m.name);
  return applied.sort().at(-1) ?? null;
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
