/**
 * The wait before a failed job's next attempt, one formula for both backends
 * (the SQL queue sets `run_at` with it; the BullMQ queue registers it as its
 * workers' custom backoff strategy rather than BullMQ's built-in exponential,
 * which has the same curve but no cap).
 */

/**
 * The longest wait between two attempts. Without it the doubling outgrows any
 * sensible schedule (and past 2^53 ms the epoch-ms arithmetic) long before
 * 1,000 attempts are spent.
 */
export const MAX_RETRY_DELAY_MS = 86_400_000;

/** After attempt `failedAttempt` (1 for the first) failed: `backoffMs * 2^(failedAttempt - 1)`, capped. */
export function retryDelayMs(backoffMs: number, failedAttempt: number): number {
  if (backoffMs <= 0) return 0;
  // Past 2^40 the product is far over the cap; stopping there keeps it finite.
  const factor = 2 ** Math.min(Math.max(failedAttempt - 1, 0), 40);
  return Math.min(Math.round(backoffMs * factor), MAX_RETRY_DELAY_MS);
}
