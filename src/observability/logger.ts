/**
 * Structured JSON logs (pino), written asynchronously so logging never blocks
 * the request path, and flushed on shutdown.
 *
 * Secrets: we never log request headers or bodies wholesale; the redaction
 * list is a second line of defence for anything that slips into a log object.
 * It names exact paths: wildcard paths make every log call walk the object.
 */
import pino, { type DestinationStream, type Logger } from 'pino';
import { LineBatcher } from './line-batcher.ts';

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
  /** Defaults to an async stdout destination. */
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
    // The destination writes each batch as it is handed over (asynchronously, one write in flight).
    new LineBatcher(pino.destination({ dest: 1, sync: false }), LOG_FLUSH_MS);
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

/** Flushes an async destination; safe to call on any logger. */
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
