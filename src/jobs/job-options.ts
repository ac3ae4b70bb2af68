/**
 * What both backends agree on before a job is stored: the defaults of
 * `AddJobOptions`, the rules ids, priorities and attempts follow (one rule
 * set, so a job either backend accepts the other accepts too), the work
 * options, and JSON in and out.
 */
import { randomUUID } from 'node:crypto';
import { MAX_RETRY_DELAY_MS } from './job-backoff.ts';
import { type AddJobOptions, QUEUE_NAMES, type QueueName, type WorkOptions } from './job-queue.ts';

export const DEFAULT_PRIORITY = 0;
export const DEFAULT_MAX_ATTEMPTS = 3;
export const DEFAULT_BACKOFF_MS = 1_000;
/** Priorities lie within ±this: mapped onto BullMQ's 1..2^21 they keep their order. */
export const MAX_PRIORITY = 1_000_000;
export const MAX_ATTEMPTS = 1_000;
/** BullMQ refuses `:` in ids and keeps all-digit ids for its own counter. */
const JOB_ID = /^[A-Za-z0-9_.~-]{1,128}$/;
const DIGITS = /^\d+$/;

export interface ResolvedJob {
  id: string;
  priority: number;
  maxAttempts: number;
  backoffMs: number;
}

/** Defaults filled in and every field checked; throws a TypeError or RangeError naming the bad one. */
export function resolveAddOptions(queue: string, options: AddJobOptions = {}): ResolvedJob {
  assertQueueName(queue);
  const id = options.id ?? randomUUID();
  if (typeof id !== 'string' || !JOB_ID.test(id) || DIGITS.test(id)) {
    throw new TypeError(
      `invalid job id ${JSON.stringify(id)}: expected 1-128 of A-Z a-z 0-9 _ . ~ -, not only digits`,
    );
  }
  return {
    id,
    priority: integerIn('priority', options.priority ?? DEFAULT_PRIORITY, -MAX_PRIORITY, MAX_PRIORITY),
    maxAttempts: integerIn('maxAttempts', options.maxAttempts ?? DEFAULT_MAX_ATTEMPTS, 1, MAX_ATTEMPTS),
    backoffMs: integerIn('backoffMs', options.backoffMs ?? DEFAULT_BACKOFF_MS, 0, MAX_RETRY_DELAY_MS),
  };
}

export function assertQueueName(queue: string): asserts queue is QueueName {
  if (!(QUEUE_NAMES as readonly string[]).includes(queue)) {
    throw new TypeError(`unknown queue ${JSON.stringify(queue)}: expected one of ${QUEUE_NAMES.join(', ')}`);
  }
}

/** The queues to work and how many jobs of each at once, checked; queues with no entry are left out. */
export function resolveConcurrency(options: WorkOptions): Array<[QueueName, number]> {
  const entries: Array<[QueueName, number]> = [];
  for (const [queue, n] of Object.entries(options.concurrency)) {
    assertQueueName(queue);
    if (n === undefined) continue;
    entries.push([queue, integerIn(`concurrency.${queue}`, n, 1, 10_000)]);
  }
  return entries;
}

function integerIn(name: string, value: number, min: number, max: number): number {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new RangeError(`${name} must be an integer from ${min} to ${max}, got ${value}`);
  }
  return value;
}

/** JSON text of `value`; `undefined` (and anything else JSON has no text for) is `null`. */
export function toJsonText(value: unknown): string {
  return JSON.stringify(value) ?? 'null';
}

/** `value` as it reads back from storage: both backends hand out exactly what JSON kept. */
export function asStoredJson(value: unknown): unknown {
  return JSON.parse(toJsonText(value));
}

export function parseJsonText(text: string | null): unknown {
  return text === null ? null : JSON.parse(text);
}
