/**
 * Runs one OpenAI batch as a job: validates the input file, sends each line
 * through the gateway (the same pipeline as a client's request: the key's
 * limits and budget, routing, cache, ledger), keeps each line's result, and
 * writes the output and error files in OpenAI's format.
 *
 * Everything is streamed: the input is read a chunk at a time, at most
 * `lineConcurrency` lines are in flight, results go to the database as they
 * come and the output files are written from there a page at a time, so a
 * 200 MB input leaves the process's memory flat.
 *
 * Crash-safe by construction: a line's result is written once (keyed by its
 * line number); a job taken over after its worker died skips the lines
 * already there; each line's request carries an id derived from the batch
 * and line, and the ledger keys rows by request id and attempt, so a line
 * re-run after a crash does not bill twice.
 */
import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { BatchRecord, BatchStore } from './batch-store.ts';
import type { FileStore } from './file-store.ts';
import { type JobContext, PermanentJobError } from './job-queue.ts';

/** One request sent through the gateway on behalf of a key (server/internal-requests.ts). */
export interface InternalCall {
  keyId: string;
  /** e.g. `/v1/chat/completions`. */
  endpoint: string;
  body: unknown;
  /** The ledger's request id for it: the same on every run of the same work. */
  requestId: string;
  signal?: AbortSignal | undefined;
}

export interface InternalResponse {
  status: number;
  body: unknown;
  /** From `Retry-After`, on a 429 or 503. */
  retryAfterMs?: number | undefined;
}

export type RequestExecutor = (call: InternalCall) => Promise<InternalResponse>;

/** Endpoints a batch (and an async job) may target. */
export const BATCH_ENDPOINTS: ReadonlySet<string> = new Set(['/v1/chat/completions', '/v1/embeddings']);

export interface BatchRunnerOptions {
  batches: BatchStore;
  files: FileStore;
  execute: RequestExecutor;
  lineConcurrency: number;
  maxLines: number;
  /** Output and error files are kept this long (ms). */
  retentionMs: number;
  /** A line over the key's rate limit waits and is sent again, this many times at most. */
  maxRateLimitWaits?: number;
}

interface BatchError {
  code: string;
  message: string;
  line: number | null;
  param: string | null;
}

/** At most this many validation errors are reported (the first ones). */
const MAX_REPORTED_ERRORS = 100;

export class BatchRunner {
  readonly #o: BatchRunnerOptions;

  constructor(options: BatchRunnerOptions) {
    this.#o = options;
  }

  /** The job handler's body for a batch job. */
  async run(batchId: string, context: JobContext): Promise<{ status: string }> {
    const { batches } = this.#o;
    let batch = await batches.get(batchId);
    if (batch === undefined) throw new PermanentJobError(`no batch ${batchId}`);
    if (batch.status === 'validating') batch = await this.#validate(batch);
    if (batch.status === 'in_progress') {
      await this.#process(batch, context);
      batch = (await batches.get(batchId))!;
      if (batch.status === 'in_progress' && context.signal.aborted) {
        // The worker is stopping, not the batch: another attempt resumes it.
        throw new Error('the worker stopped before the batch finished');
      }
    }
    if (batch.status === 'in_progress' || batch.status === 'finalizing' || batch.status === 'cancelling') {
      batch = await this.#finalize(batch);
    }
    return { status: batch.status };
  }

  async #validate(batch: BatchRecord): Promise<BatchRecord> {
    const errors: BatchError[] = [];
    const customIds = new Set<string>();
    let total = 0;
    for await (const { line, text } of this.#o.files.lines(batch.input_file_id)) {
      total++;
      if (total > this.#o.maxLines) {
        errors.push(
          batchError('too_many_requests', `The file has more than ${this.#o.maxLines} requests`, line),
        );
        break;
      }
      const problem = lineProblem(text, batch.endpoint, customIds);
      if (problem !== undefined && errors.length < MAX_REPORTED_ERRORS) errors.push({ ...problem, line });
    }
    if (total === 0) errors.push(batchError('empty_file', 'The input file has no requests', null));
    const now = Date.now();
    const next =
      errors.length > 0
        ? await this.#o.batches.transition(batch.id, ['validating'], {
            status: 'failed',
            failed_at: now,
            errors: JSON.stringify({ object: 'list', data: errors }),
          })
        : await this.#o.batches.transition(batch.id, ['validating'], {
            status: 'in_progress',
            in_progress_at: now,
            total,
          });
    // Not validating any more: cancelled meanwhile.
    return next ?? (await this.#o.batches.get(batch.id))!;
  }

  async #process(batch: BatchRecord, context: JobContext): Promise<void> {
    const { batches, files } = this.#o;
    const done = await batches.doneLines(batch.id);
    const running = new Set<Promise<void>>();
    let lastReport = Date.now();
    for await (const { line, text } of files.lines(batch.input_file_id)) {
      if (context.signal.aborted) break;
      if (done.has(line)) continue;
      const task = this.#runLine(batch, line, text, context.signal).finally(() => running.delete(task));
      running.add(task);
      if (running.size >= this.#o.lineConcurrency) await Promise.race(running);
      if (Date.now() - lastReport >= 1_000) {
        lastReport = Date.now();
        await this.#reportCounts(batch.id, context);
        // A cancel arrives as the batch's status (and the job's signal when the queue relays it).
        const now = await batches.get(batch.id);
        if (now?.status === 'cancelling') break;
      }
    }
    await Promise.all(running);
    await this.#reportCounts(batch.id, context);
  }

  async #runLine(batch: BatchRecord, line: number, text: string, signal: AbortSignal): Promise<void> {
    // Validated already: a JSON object with a custom_id and a body.
    const request = JSON.parse(text) as { custom_id: string; body: unknown };
    const lineId = createHash('sha256').update(`${batch.id}:${line}`).digest('hex').slice(0, 24);
    const requestId = `${batch.id}-${line}`;
    if (Date.now() > batch.expires_at) {
      await this.#o.batches.recordLine(
        batch.id,
        line,
        false,
        JSON.stringify({
          id: `batch_req_${lineId}`,
          custom_id: request.custom_id,
          response: null,
          error: {
            code: 'batch_expired',
            message: 'This request could not be executed before the completion window expired.',
          },
        }),
      );
      return;
    }
    let response: InternalResponse;
    let sentAs = requestId;
    for (let waits = 0; ; waits++) {
      // A line sent again after a 429 is another request (an upstream 429 has
      // ledger rows of its own); the first send keeps the line's own id, so a
      // line run again after a crash lands on the rows it already has.
      sentAs = waits === 0 ? requestId : `${requestId}.${waits}`;
      response = await this.#o.execute({
        keyId: batch.key_id,
        endpoint: batch.endpoint,
        body: request.body,
        requestId: sentAs,
        signal,
      });
      // Over the key's rate limit: wait as told and send it again (the batch respects the key's limits).
      if (response.status !== 429 || waits >= (this.#o.maxRateLimitWaits ?? 20) || signal.aborted) break;
      // Ends early, without throwing, when the batch is cancelled or the worker stops.
      await sleep(Math.min(60_000, Math.max(100, response.retryAfterMs ?? 1_000)), undefined, {
        signal,
      }).catch(() => undefined);
    }
    const ok = response.status >= 200 && response.status < 300;
    await this.#o.batches.recordLine(
      batch.id,
      line,
      ok,
      JSON.stringify({
        id: `batch_req_${lineId}`,
        custom_id: request.custom_id,
        response: { status_code: response.status, request_id: sentAs, body: response.body },
        error: null,
      }),
    );
  }

  async #reportCounts(batchId: string, context: JobContext): Promise<void> {
    const counts = await this.#o.batches.lineCounts(batchId);
    await this.#o.batches.transition(batchId, ['in_progress', 'cancelling'], counts);
    await context.reportProgress(counts);
  }

  async #finalize(batch: BatchRecord): Promise<BatchRecord> {
    const { batches, files } = this.#o;
    const cancelling = batch.status === 'cancelling';
    if (batch.status === 'in_progress') {
      batch =
        (await batches.transition(batch.id, ['in_progress'], {
          status: 'finalizing',
          finalizing_at: Date.now(),
        })) ?? (await batches.get(batch.id))!;
      if (batch.status !== 'finalizing' && batch.status !== 'cancelling') return batch;
    }
    const counts = await batches.lineCounts(batch.id);
    const expiresAt = Date.now() + this.#o.retentionMs;
    const write = async (ok: boolean, kind: string) =>
      (ok ? counts.completed : counts.failed) === 0
        ? null
        : (
            await files.writeLines(
              {
                keyId: batch.key_id,
                purpose: 'batch_output',
                filename: `${batch.id}_${kind}.jsonl`,
                expiresAt,
              },
              batches.outputs(batch.id, ok),
            )
          ).id;
    const outputFileId = await write(true, 'output');
    const errorFileId = await write(false, 'error');
    const now = Date.now();
    const expired = !cancelling && now > batch.expires_at;
    const final = await batches.transition(batch.id, [batch.status], {
      status: cancelling ? 'cancelled' : expired ? 'expired' : 'completed',
      output_file_id: outputFileId,
      error_file_id: errorFileId,
      ...counts,
      ...(cancelling ? { cancelled_at: now } : expired ? { expired_at: now } : { completed_at: now }),
    });
    if (final === undefined) {
      // Cancelled while finalizing: finish it as cancelled with the files written.
      const current = (await batches.get(batch.id))!;
      return current.status === 'cancelling' ? this.#finalize(current) : current;
    }
    await batches.dropLines(batch.id);
    return final;
  }
}

function batchError(
  code: string,
  message: string,
  line: number | null,
  param: string | null = null,
): BatchError {
  return { code, message, line, param };
}

/** What is wrong with one input line, or undefined. */
function lineProblem(
  text: string,
  endpoint: string,
  customIds: Set<string>,
): Omit<BatchError, 'line'> | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { code: 'invalid_json_line', message: 'This line is not valid JSON.', param: null };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { code: 'invalid_json_line', message: 'This line is not a JSON object.', param: null };
  }
  const line = value as Record<string, unknown>;
  if (typeof line.custom_id !== 'string' || line.custom_id === '') {
    return { code: 'missing_required_parameter', message: 'custom_id is required.', param: 'custom_id' };
  }
  if (customIds.has(line.custom_id)) {
    return {
      code: 'duplicate_custom_id',
      message: 'custom_id must be unique within the file.',
      param: 'custom_id',
    };
  }
  customIds.add(line.custom_id);
  if (line.method !== 'POST') {
    return { code: 'invalid_method', message: 'method must be POST.', param: 'method' };
  }
  if (line.url !== endpoint) {
    return {
      code: 'mismatched_endpoint',
      message: `url must be the batch's endpoint (${endpoint}).`,
      param: 'url',
    };
  }
  if (typeof line.body !== 'object' || line.body === null || Array.isArray(line.body)) {
    return { code: 'missing_required_parameter', message: 'body must be a JSON object.', param: 'body' };
  }
  if ((line.body as { stream?: unknown }).stream === true) {
    return { code: 'invalid_request', message: 'stream is not supported in a batch.', param: 'body.stream' };
  }
  return undefined;
}
