/**
 * Structured JSON logs (pino), collected into batches and written to standard
 * output in the calling thread without ever waiting on a slow reader
 * (stdout-destination.ts), and flushed on shutdown.
 *
 * Secrets: we never log request headers or bodies wholesale; the redaction
 * list is a second line of defence for anything that slips into a log object.
 * It names exact paths: wildcard paths make every log call walk the object.
 */
import pino, { type DestinationStream, type Logger } from 'pino';
import { LineBatcher } from './line-batcher.ts';
import { StdoutDestination } from './stdout-destination.ts';

export type { Logger };

const REDACT = [
  'authorization',
  'headers.authorization',
  'headers["x-api-key"]',
  'headers["api-key"]',
  'headers.cookie',
  'req.headers.authorization',
  'req.headers["x-api-key"]',
  'req.headers["api-key"]',
  'req.headers.cookie',
  'api_key',
  'apiKey',
  'master_key',
  'masterKey',
  'key',
  'secret',
  'password',
  'token',
  'err.config.headers.authorization',
];

export interface LoggerOptions {
  level: string;
  /** Defaults to standard output, batched (line-batcher.ts, stdout-destination.ts). */
  destination?: DestinationStream;
}

/**
 * Lines are collected into ~16 KB writes (line-batcher.ts); a quiet
 * gateway's lines are written at least this often, so there is something to
 * read while it runs and a kill -9 loses at most this much.
 */
const LOG_FLUSH_MS = 500;

export function createLogger(options: LoggerOptions): Logger {
  const destination =
    options.destination ??
    // Each batch is written as it is handed over; a stalled reader's backlog is bounded.
    new LineBatcher(new StdoutDestination(), LOG_FLUSH_MS);
  return pino(
    {
      level: options.level,
      base: { service: 'switchyard' },
      // Epoch milliseconds (pino's default `time`): formatting an ISO date per line costs measurably.
      redact: { paths: REDACT, censor: '[redacted]' },
      formatters: { level: (label) => ({ level: label }) },
    },
    destination,
  );
}

/** Flushes the logger's destination (waiting at most ~2 s for a stalled reader); safe to call on any logger. */
export function flushLogger(logger: Logger): Promise<void> {
  return new Promise((resolve) => {
    try {
      logger.flush((error) => {
        void error;
        resolve();
      });
    } catch {
      resolve();
    }
  });
}
