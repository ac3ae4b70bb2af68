/**
 * The primary process of `switchyard start --workers N`: forks N HTTP worker
 * processes (each a whole gateway) that serve one port through node:cluster,
 * replaces any that dies, and on SIGTERM drains them all.
 *
 * node:cluster rather than SO_REUSEPORT (`listen({ reusePort })`): the
 * primary accepts every connection and hands it to the workers in turn
 * (round robin), so the load stays even however the kernel would hash
 * connections, a worker that dies simply stops being handed any (no
 * connection waits in a dead worker's accept queue, which with SO_REUSEPORT
 * is lost with it), and a replacement joins the rotation the moment it
 * listens. The primary's cost, one accept and one handle passed per
 * connection, is paid per connection, not per request: clients and load
 * balancers keep connections alive (bench/workers.ts measures the total).
 *
 * The primary serves nothing and opens no database: it only forks, watches
 * and signals. Job workers (queues) run inside each HTTP worker process as
 * in a single process; they coordinate through the shared queue.
 */
import cluster, { type Worker } from 'node:cluster';
import type { AddressInfo } from 'node:net';
import { defaultRestartPolicy, RestartHistory, type RestartPolicy } from './restart-policy.ts';

/** Sent by a worker once its gateway listens. */
export interface HttpWorkerListening {
  type: 'switchyard:http-worker-listening';
  address: AddressInfo;
  /** The database as the banner describes it (the primary opens none). */
  database: string;
}

/** The worker's slot (0 … N-1), so one of them can take on the once-per-fleet work. */
export const HTTP_WORKER_INDEX_ENV = 'SWITCHYARD_HTTP_WORKER_INDEX';

export function isListeningMessage(message: unknown): message is HttpWorkerListening {
  return (
    typeof message === 'object' &&
    message !== null &&
    (message as { type?: unknown }).type === 'switchyard:http-worker-listening'
  );
}

/** In an HTTP worker process: tells the primary this worker serves. */
export function announceListening(address: AddressInfo, database: string): void {
  const message: HttpWorkerListening = { type: 'switchyard:http-worker-listening', address, database };
  process.send?.(message);
}

/** This process's slot when it is an HTTP worker, else undefined. */
export function httpWorkerIndex(): number | undefined {
  if (!cluster.isWorker) return undefined;
  const index = Number(process.env[HTTP_WORKER_INDEX_ENV]);
  return Number.isInteger(index) ? index : undefined;
}

export interface SupervisorLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface HttpWorkerSupervisorOptions {
  workers: number;
  /** Past this after SIGTERM, workers still running are killed (their own drain has a grace period before it). */
  stopTimeoutMs: number;
  logger: SupervisorLogger;
  /** One human line per event (stderr), besides the structured log. */
  notice: (line: string) => void;
  restart?: RestartPolicy;
}

interface Slot {
  index: number;
  worker: Worker | undefined;
  listening: boolean;
  /** A replacement waiting out its restart delay. */
  timer: NodeJS.Timeout | undefined;
}

export class HttpWorkerSupervisor {
  readonly #options: HttpWorkerSupervisorOptions;
  readonly #slots: Slot[];
  readonly #restarts: RestartHistory;
  #stopping: Promise<boolean> | undefined;
  #started = false;
  #failStart: ((error: Error) => void) | undefined;
  #onListening: ((slot: Slot, message: HttpWorkerListening) => void) | undefined;

  constructor(options: HttpWorkerSupervisorOptions) {
    this.#options = options;
    this.#slots = Array.from({ length: options.workers }, (_, index) => ({
      index,
      worker: undefined,
      listening: false,
      timer: undefined,
    }));
    this.#restarts = new RestartHistory(options.restart ?? defaultRestartPolicy(options.workers));
  }

  /** The live workers' pids, by slot. */
  get pids(): number[] {
    return this.#slots.flatMap((s) => (s.worker?.process.pid === undefined ? [] : [s.worker.process.pid]));
  }

  /**
   * Forks every worker; resolves with the first one's listening message once
   * all of them listen. A worker that exits before that fails the start (its
   * own error is on stderr): the others are stopped, nothing is retried.
   */
  start(): Promise<HttpWorkerListening> {
    // Round robin by the primary (the default everywhere but Windows), said so it stays so.
    cluster.schedulingPolicy = cluster.SCHED_RR;
    return new Promise<HttpWorkerListening>((resolve, reject) => {
      let first: HttpWorkerListening | undefined;
      this.#failStart = (error) => {
        this.#failStart = undefined;
        void this.stop().then(() => reject(error));
      };
      this.#onListening = (_slot, message) => {
        first ??= message;
        if (!this.#started && this.#slots.every((s) => s.listening)) {
          this.#started = true;
          this.#failStart = undefined;
          resolve(first);
        }
      };
      for (const slot of this.#slots) this.#fork(slot);
    });
  }

  /**
   * SIGTERM to every worker (each drains as a single gateway does: in-flight
   * requests and streams finish, the ledger is flushed), then waits for all
   * of them. True when every one exited cleanly. Idempotent.
   */
  stop(): Promise<boolean> {
    this.#stopping ??= this.#stop();
    return this.#stopping;
  }

  async #stop(): Promise<boolean> {
    for (const slot of this.#slots) {
      clearTimeout(slot.timer);
      slot.timer = undefined;
    }
    const live = this.#slots.flatMap((s) => (s.worker && !isDead(s.worker) ? [s.worker] : []));
    let clean = true;
    const deadline = setTimeout(() => {
      clean = false;
      for (const worker of live) {
        if (!isDead(worker)) {
          this.#options.logger.error({ pid: worker.process.pid }, 'HTTP worker did not stop in time: killed');
          worker.process.kill('SIGKILL');
        }
      }
    }, this.#options.stopTimeoutMs);
    const exits = live.map(
      (worker) =>
        new Promise<void>((resolve) => {
          worker.once('exit', (code, signal) => {
            if (code !== 0) {
              clean = false;
              this.#options.notice(
                `HTTP worker (pid ${worker.process.pid}) did not drain cleanly: exited with ${signal ?? `code ${code}`}`,
              );
            }
            resolve();
          });
          worker.process.kill('SIGTERM');
        }),
    );
    await Promise.all(exits);
    clearTimeout(deadline);
    return clean;
  }

  #fork(slot: Slot): void {
    const worker = cluster.fork({ [HTTP_WORKER_INDEX_ENV]: String(slot.index) });
    slot.worker = worker;
    slot.listening = false;
    const pid = worker.process.pid;
    worker.on('message', (message: unknown) => {
      if (!isListeningMessage(message) || slot.worker !== worker) return;
      slot.listening = true;
      if (this.#started) {
        this.#options.logger.info({ worker: slot.index + 1, pid }, 'replacement HTTP worker listening');
        this.#options.notice(`HTTP worker ${slot.index + 1} replaced: pid ${pid} listening`);
      }
      this.#onListening?.(slot, message);
    });
    worker.on('exit', (code, signal) => {
      if (slot.worker !== worker) return;
      slot.worker = undefined;
      slot.listening = false;
      if (this.#stopping) return;
      const how = signal ? `signal ${signal}` : `code ${code}`;
      if (!this.#started) {
        this.#failStart?.(
          new Error(`HTTP worker ${slot.index + 1} (pid ${pid}) exited during start (${how})`),
        );
        return;
      }
      const { delayMs, recent } = this.#restarts.next(Date.now());
      this.#options.logger.error(
        { worker: slot.index + 1, pid, code, signal, restartInMs: delayMs, restartsInWindow: recent },
        'HTTP worker died: starting a replacement',
      );
      this.#options.notice(
        `HTTP worker ${slot.index + 1} (pid ${pid}) died (${how}); replacing it${delayMs > 0 ? ` in ${delayMs / 1000} s (${recent} restarts within a minute)` : ''}`,
      );
      slot.timer = setTimeout(() => {
        slot.timer = undefined;
        if (!this.#stopping) this.#fork(slot);
      }, delayMs);
    });
  }
}

function isDead(worker: Worker): boolean {
  return worker.process.exitCode !== null || worker.process.signalCode !== null;
}
