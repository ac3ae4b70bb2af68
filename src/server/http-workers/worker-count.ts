/**
 * `switchyard start --workers N|auto`: how many HTTP worker processes serve
 * the gateway's port. `auto` is the number of CPUs this process may use
 * (os.availableParallelism(): a cgroup or taskset limit counts, the machine's
 * total does not), since each worker is one event loop and so one core.
 */
import { availableParallelism } from 'node:os';

/** More would be a typo (`--workers 80` for 8) long before it was a machine. */
export const MAX_HTTP_WORKERS = 256;

export class WorkerCountError extends Error {}

export function parseWorkerCount(value: string | undefined, cpus = availableParallelism()): number {
  if (value === undefined) return 1;
  if (value === 'auto') return Math.max(1, Math.min(cpus, MAX_HTTP_WORKERS));
  if (!/^[0-9]+$/.test(value) || Number(value) < 1 || Number(value) > MAX_HTTP_WORKERS) {
    throw new WorkerCountError(
      `--workers takes a whole number from 1 to ${MAX_HTTP_WORKERS}, or auto (one per CPU this process may use: ${cpus}); got '${value}'`,
    );
  }
  return Number(value);
}
