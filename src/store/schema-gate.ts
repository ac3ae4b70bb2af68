/**
 * The start-up decision about the database schema: migrate it (the default), or,
 * with `storage.migrate: false`, refuse to serve on a schema older than this
 * version's. A rolling deploy runs the migration once, in a Job, before the new
 * pods start (deploy/kubernetes/base/migrate-job.yaml); a pod that starts before
 * the Job has finished must fail and be restarted rather than serve requests
 * whose queries need tables or columns that do not exist yet.
 */
import { MIGRATION_NAMES, migrate, pendingMigrations } from './migrations.ts';
import type { Database } from './sql.ts';

export class SchemaOutOfDateError extends Error {
  readonly code = 'schema_out_of_date';
  readonly pending: readonly string[];

  constructor(pending: readonly string[]) {
    const applied = MIGRATION_NAMES.length - pending.length;
    super(
      `database schema is out of date: ${pending.length} of ${MIGRATION_NAMES.length} migrations not applied ` +
        `(${applied === 0 ? 'empty database' : `at ${MIGRATION_NAMES[applied - 1]}`}; this version needs ` +
        `${MIGRATION_NAMES.at(-1)}); storage.migrate is false, so run \`switchyard migrate\` first`,
    );
    this.name = 'SchemaOutOfDateError';
    this.pending = pending;
  }
}

/**
 * Migrates when `autoMigrate`, else checks. Resolves with the migrations applied
 * here (none when checking); rejects with SchemaOutOfDateError when checking finds
 * any pending.
 */
export async function prepareSchema(
  database: Database,
  autoMigrate: boolean,
): Promise<{ applied: string[] }> {
  if (autoMigrate) return migrate(database);
  const pending = await pendingMigrations(database);
  if (pending.length > 0) throw new SchemaOutOfDateError(pending);
  return { applied: [] };
}
