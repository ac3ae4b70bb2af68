/**
 * Writes a log line whose fields the caller has already written as JSON
 * members, in exactly the bytes pino would write for them.
 *
 * For the request line (one per request, the hot path): pino's general
 * formatting checks every value's type, looks each key up among the
 * redaction stringifiers and builds the line by concatenation, ~3 KB
 * allocated and a few µs a line. The caller here knows its fields (flat,
 * none of them a redacted path) and writes them once as a string.
 *
 * The line is pino's: its level label, `time`, the logger's bindings (the
 * child's `requestId` too), the fields, `msg`; written to the logger's own
 * stream. A logger that does more per line (a mixin, a streamWrite hook, a
 * message prefix, a multistream that wants each line's metadata) gets the
 * fields through `logger.info`, so nothing it does is skipped.
 */
import pino, { type Logger } from 'pino';

// pino.symbols is pino's integration API; its type lists only some of them (not msgPrefixSym).
const sym = pino.symbols as unknown as Record<string, symbol>;
const LEVEL_STRINGS = sym['lsCacheSym']!;
const TIME = sym['timeSym']!;
const BINDINGS = sym['chindingsSym']!;
const STREAM = sym['streamSym']!;
const END = sym['endSym']!;
const MIXIN = sym['mixinSym']!;
const HOOKS = sym['hooksSym']!;
const MSG_PREFIX = sym['msgPrefixSym']!;
const NEEDS_METADATA = sym['needsMetadataGsym']!;
const INFO = 30;

interface LineStream {
  write(line: string): unknown;
}

/**
 * Writes an info line: `members` is `,"name":value` for each field (values
 * written with JSON.stringify or as plain numbers), `msg` the message.
 */
export function writeInfoLine(logger: Logger, members: string, msg: string): void {
  if (logger.levelVal > INFO) return;
  const p = logger as unknown as Record<symbol, unknown>;
  const stream = p[STREAM] as LineStream & Record<symbol, unknown>;
  if (
    p[MIXIN] ||
    (p[HOOKS] as { streamWrite?: unknown }).streamWrite ||
    p[MSG_PREFIX] ||
    stream[NEEDS_METADATA]
  ) {
    logger.info(JSON.parse(`{${members.slice(1)}}`) as object, msg);
    return;
  }
  const level = (p[LEVEL_STRINGS] as Record<number, string>)[INFO];
  const time = (p[TIME] as () => string).call(logger);
  stream.write(
    `${level}${time}${p[BINDINGS] as string}${members},"msg":${JSON.stringify(msg)}${p[END] as string}`,
  );
}

/** `,"name":"value"` for a string field (JSON-escaped). */
export function stringMember(name: string, value: string): string {
  return `,"${name}":${JSON.stringify(value)}`;
}
