/**
 * The job queue suite against SqlJobQueue on a real PostgreSQL (the one the
 * test runner starts): each case a database of its own.
 */
import { createPostgresDatabase, testPostgresUrl } from '../helpers/services.ts';
import { jobQueueConformance } from './job-queue.ts';
import { sqlJobQueues } from './sql-job-queues.ts';

jobQueueConformance('postgres', async () => sqlJobQueues(await createPostgresDatabase(testPostgresUrl())));
