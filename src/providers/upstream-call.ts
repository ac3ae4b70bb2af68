/**
 * One upstream call, read push-style: undici's HTTP parser calls this
 * handler with the answer's headers and each body chunk, and the subclass
 * consumes them in the same call (a whole JSON body: upstream-json-answer.ts;
 * an event stream: upstream-event-stream.ts; a readiness probe's drained
 * body: upstream-probe.ts).
 *
 * Why not undici's `request()`: its answer is a Readable body that callers
 * read through Node's async iterator (an async generator), each chunk
 * costing promises, iterator results and ticks on every layer it passes;
 * for a relayed 24-chunk stream about a third of what it allocated. Here a
 * chunk costs what is done with it.
 *
 * What every call shares lives here: the attempt's signal and its three
 * deadlines abort it (total, first byte, idle: one timer a call, below); an
 * error answer (non-2xx, or whatever the subclass refuses) is read, bounded,
 * and thrown as the adapter maps it; transport errors are mapped (a client
 * abort stays one). Redirects are not followed (a dispatch never follows
 * them): a 3xx is an error answer.
 */
import { createRequire } from 'node:module';
import type { Dispatcher } from 'undici';
import { GatewayError } from '../core/errors.ts';
import {
  firstByteTimeout,
  idleTimeout,
  MAX_UPSTREAM_BODY_BYTES,
  mapTransportError,
  type UpstreamErrorMapper,
} from './transport-error.ts';
import type { AttemptContext, Timeouts } from './types.ts';

export type ResponseHeaders = Record<string, string | string[] | undefined>;

const parseHeaders = (createRequire(import.meta.url)('undici/lib/core/util.js') as UndiciUtil).parseHeaders;
interface UndiciUtil {
  parseHeaders(raw: Buffer[]): ResponseHeaders;
}

export interface UpstreamPost {
  /** Path and query on the upstream's origin. */
  path: string;
  headers: Record<string, string>;
  /** A POST's JSON text; a GET (a readiness probe) has none. */
  body?: string;
  ctx: AttemptContext;
}

/** Sends `post` (a GET when it has no body) through `dispatcher` with `handler` reading the answer. */
export function dispatchCall(dispatcher: Dispatcher, post: UpstreamPost, handler: UpstreamCall): void {
  dispatcher.dispatch(
    {
      method: post.body === undefined ? 'GET' : 'POST',
      path: post.path,
      headers: post.headers,
      body: post.body ?? null,
      // The call keeps these deadlines itself (UpstreamCall): undici's own make
      // timer objects that live ~1 s past their request, 3 a call at c=50 held
      // ~10,000 of them, all promoted to V8's old generation.
      headersTimeout: 0,
      bodyTimeout: 0,
    },
    handler as unknown as Dispatcher.DispatchHandler,
  );
}

/** An error answer being read: its status as mapped, its headers and its body so far. */
interface Refusal {
  status: number;
  headers: ResponseHeaders;
  chunks: Buffer[];
  size: number;
}

/**
 * The three deadlines of a call, on one timer that is re-armed only when it
 * fires: total from the call's start; first byte from the request going out
 * on a connection to the answer's headers; idle from the last thing heard
 * (headers, then each body chunk) while the call is reading (a consumer
 * holding the answer back is not the upstream going silent). A chunk only
 * notes the time; the timer, when it fires early, looks again at the next
 * deadline.
 */
export abstract class UpstreamCall {
  protected readonly signal: AbortSignal;
  readonly #mapError: UpstreamErrorMapper;
  readonly #timeouts: Timeouts;
  readonly #startedAt = performance.now();
  #timer: NodeJS.Timeout;
  /** When the request went out on a connection. */
  #sentAt: number | undefined;
  /** When the answer was last heard from: its headers, then each body chunk. */
  #heardAt: number | undefined;
  /** The consumer is holding the answer back (`body` said false): no idle deadline meanwhile. */
  #held = false;
  /** undici's abort for this request, once it is on a connection. */
  #abort: ((reason: Error) => void) | undefined;
  /** Why the call was aborted before it reached a connection. */
  #abortReason: Error | undefined;
  /** Resumes a parser paused by `onData` returning false (through `resumeReading`, which restarts the idle deadline). */
  #resume: (() => void) | undefined;
  #refusal: Refusal | undefined;
  /** Ended, failed or released: nothing more is read. */
  protected over = false;

  protected constructor(ctx: AttemptContext, mapError: UpstreamErrorMapper) {
    ctx.signal.throwIfAborted();
    this.signal = ctx.signal;
    this.#mapError = mapError;
    // The signal is listened to from onRequestSent on: see there.
    this.#timeouts = ctx.timeouts;
    // No deadline can come sooner: the request goes out, and the answer starts, after the start.
    const { totalMs, firstByteMs, idleMs } = ctx.timeouts;
    this.#timer = setTimeout(checkDeadlines, Math.min(totalMs, firstByteMs, idleMs), this);
  }

  /** The status to read the answer as an error with, or undefined to accept it. */
  protected abstract refusalStatus(statusCode: number, headers: ResponseHeaders): number | undefined;
  /** An accepted answer's headers arrived. */
  protected abstract accepted(headers: ResponseHeaders): void;
  /** A chunk of an accepted answer's body; false pauses the parser until `resumeReading`. */
  protected abstract body(chunk: Buffer): boolean;
  /** The accepted answer's body ended. */
  protected abstract ended(): void;
  /** The call failed: an error answer (mapped by the adapter) or a transport failure (mapped here). */
  protected abstract failed(error: unknown): void;

  /** The attempt's signal fired (an EventListener object: no closure per call). */
  handleEvent(): void {
    this.abortCall(this.signal.reason as Error);
  }

  /** Aborts the request: undici then calls `onError` with `reason` (unless it is already over). */
  abortCall(reason: Error): void {
    if (this.#abort) this.#abort(reason);
    else this.#abortReason ??= reason;
  }

  /** The deadline timer fired: fails the call if a deadline passed, else waits for the next one. */
  checkDeadlines(): void {
    if (this.over) return;
    const now = performance.now();
    const timeouts = this.#timeouts;
    let next = this.#startedAt + timeouts.totalMs;
    if (now >= next) {
      this.abortCall(new GatewayError('upstream_timeout', 'Upstream total timeout exceeded'));
      return;
    }
    if (this.#heardAt === undefined) {
      // Not sent yet: its first-byte deadline is at least this far off.
      const firstByte = (this.#sentAt ?? now) + timeouts.firstByteMs;
      if (now >= firstByte) {
        this.abortCall(firstByteTimeout());
        return;
      }
      // An answer starting from now on goes idle an idle timeout later at the soonest.
      next = Math.min(next, firstByte, now + timeouts.idleMs);
    } else {
      // Held back: look again in an idle timeout, by when the consumer may have resumed.
      const idle = (this.#held ? now : this.#heardAt) + timeouts.idleMs;
      if (now >= idle) {
        this.abortCall(idleTimeout());
        return;
      }
      next = Math.min(next, idle);
    }
    this.#timer = setTimeout(checkDeadlines, Math.max(1, Math.ceil(next - now)), this);
  }

  /** Reading again after `body` said false: the idle deadline counts from now. */
  protected resumeReading(): void {
    this.#held = false;
    this.#heardAt = performance.now();
    this.#resume?.();
  }

  /** Nothing more will be read: timer and listener released. */
  protected finish(): void {
    this.over = true;
    clearTimeout(this.#timer);
    this.signal.removeEventListener('abort', this);
  }

  // ---- undici's dispatch handler (the form its own `request()` uses)

  onConnect(abort: (reason: Error) => void): void {
    this.#sentAt = performance.now();
    const reason = this.#abortReason ?? (this.signal.aborted ? (this.signal.reason as Error) : undefined);
    if (reason !== undefined) abort(reason);
    else this.#abort = abort;
  }

  /**
   * The request is written: from here on the attempt's signal aborts it. An
   * abort before this can only be recorded anyway (undici gives its abort at
   * onConnect, which looks at the signal), so listening from the start would
   * only put an EventTarget listener (~20 µs on a cooled gateway) before the
   * upstream request is written.
   */
  onRequestSent(): void {
    if (!this.over) this.signal.addEventListener('abort', this);
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[], resume: () => void): boolean {
    this.#heardAt = performance.now();
    this.#resume = resume;
    const headers = parseHeaders(rawHeaders);
    const refusedAs = this.refusalStatus(statusCode, headers);
    if (refusedAs !== undefined) this.#refusal = { status: refusedAs, headers, chunks: [], size: 0 };
    else this.accepted(headers);
    return true;
  }

  onData(chunk: Buffer): boolean {
    this.#heardAt = performance.now();
    const refusal = this.#refusal;
    if (refusal === undefined) {
      if (this.over || this.body(chunk)) return true;
      this.#held = true;
      return false;
    }
    // Bounded: past the bound the error is mapped from what came.
    refusal.size += chunk.length;
    if (refusal.size <= MAX_UPSTREAM_BODY_BYTES) refusal.chunks.push(chunk);
    return true;
  }

  onComplete(): void {
    if (this.over) return;
    const refusal = this.#refusal;
    if (refusal === undefined) {
      this.ended();
      return;
    }
    this.finish();
    this.failed(
      this.#mapError(refusal.status, refusal.headers, Buffer.concat(refusal.chunks).toString('utf8')),
    );
  }

  onError(error: Error): void {
    if (this.over) return;
    this.finish();
    const refusal = this.#refusal;
    // An error answer cut short is still that answer, mapped from what came of its body.
    this.failed(
      refusal === undefined || this.signal.aborted
        ? mapTransportError(error, this.signal)
        : this.#mapError(refusal.status, refusal.headers, Buffer.concat(refusal.chunks).toString('utf8')),
    );
  }
}

function checkDeadlines(call: UpstreamCall): void {
  call.checkDeadlines();
}
