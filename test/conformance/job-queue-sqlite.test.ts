/** The job queue suite against SqlJobQueue on SQLite: each case a database file of its own. */
import { jobQueueConformance } from './job-queue.ts';
import { sqlJobQueues } from './sql-job-queues.ts';

jobQueueConformance('sqlite', () => sqlJobQueues(undefined));
