/**
 * The job queue suite's SQL side, for SQLite and PostgreSQL alike: every
 * queue a case opens has its own connection to the case's database (as
 * separate gateway processes have), migrated by the first; `close` closes the
 * queues (and their workers), then the connections, then removes the case's
 * data.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqlJobQueue } from '../../src/jobs/sql-job-queue.ts';
import { migrate } from '../../src/store/migrations.ts';
import { type Database, openDatabase } from '../../src/store/sql.ts';
import type { JobQueueHarness } from './job-queue.ts';

/** `url`: a database of the case's own; undefined for a SQLite file of its own. */
export async function sqlJobQueues(url: string | undefined): Promise<JobQueueHarness> {
  const dataDir = mkdtempSync(join(tmpdir(), 'switchyard-jobs-'));
  const databases: Database[] = [];
  const queues: SqlJobQueue[] = [];
  let migrated: Promise<unknown> | undefined;
  return {
    async open(options = {}) {
      const database = await openDatabase({ url, dataDir });
      databases.push(database);
      migrated ??= migrate(database);
      await migrated;
      const queue = new SqlJobQueue(database, {
        // Idle workers ask often, and see cancels soon: the cases wait on both.
        pollMs: 20,
        heartbeatMs: 50,
        ...(options.shortLease ? { leaseMs: 300, sweepMs: 50 } : {}),
      });
      queues.push(queue);
      return queue;
    },
    async close() {
      await Promise.all(queues.map((queue) => queue.close()));
      await Promise.all(databases.map((database) => database.close()));
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
