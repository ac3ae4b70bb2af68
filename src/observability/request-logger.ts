/**
 * A request's logger, made only if something logs through it.
 *
 * Fastify gives every request a pino child bound to its id. Making one costs
 * ~24 µs on a gateway that was idle for a millisecond or two (measured: the
 * cold caches between a lightly loaded gateway's requests), and it is made
 * before the route runs, so it delays every upstream call by that much; yet
 * most requests log nothing but their request line. That line is written
 * from the parent's bindings and the request's own (`bindingsText`,
 * json-line.ts), in the bytes the child would have written; a warning or an
 * error, or a child of it, makes the real child then, and it is kept.
 */
import type { FastifyBaseLogger } from 'fastify';
import type { Bindings, ChildLoggerOptions, Logger } from 'pino';
import { writeInfoLine } from './json-line.ts';

type Level = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace';
type LogArgs = [unknown, ...unknown[]];

export class RequestLogger implements FastifyBaseLogger {
  readonly parent: Logger;
  readonly #bindings: Bindings;
  #child: Logger | undefined;

  constructor(parent: Logger, bindings: Bindings) {
    this.parent = parent;
    this.#bindings = bindings;
  }

  /**
   * Fastify's child logger factory: a RequestLogger, or the child at once when
   * the route asks for its own level or serializers (the lazy form knows neither).
   */
  static factory(
    this: unknown,
    logger: FastifyBaseLogger,
    bindings: Bindings,
    options: ChildLoggerOptions,
  ): FastifyBaseLogger {
    const parent = logger as Logger;
    if (options.level !== undefined || options.serializers !== undefined)
      return parent.child(bindings, options);
    return new RequestLogger(parent, bindings);
  }

  /** The child, once something needed it; undefined while only the request line was written. */
  get made(): Logger | undefined {
    return this.#child;
  }

  /** The request's own bindings as pino writes them after the parent's: `,"requestId":"…"`. */
  get bindingsText(): string {
    const bindings = this.#bindings;
    let text = '';
    for (const name in bindings) {
      const value: unknown = bindings[name];
      if (Object.hasOwn(bindings, name) && value !== undefined) text += `,"${name}":${JSON.stringify(value)}`;
    }
    return text;
  }

  get level(): string {
    return (this.#child ?? this.parent).level;
  }

  set level(level: string) {
    this.#real().level = level;
  }

  fatal(...args: LogArgs): void {
    this.#log('fatal', args);
  }
  error(...args: LogArgs): void {
    this.#log('error', args);
  }
  warn(...args: LogArgs): void {
    this.#log('warn', args);
  }
  info(...args: LogArgs): void {
    this.#log('info', args);
  }
  debug(...args: LogArgs): void {
    this.#log('debug', args);
  }
  trace(...args: LogArgs): void {
    this.#log('trace', args);
  }
  silent(): void {}

  child(bindings: Bindings, options?: ChildLoggerOptions): FastifyBaseLogger {
    return this.#real().child(bindings, options);
  }

  #log(level: Level, args: LogArgs): void {
    // A line below the level is dropped without making the child for it.
    if (!(this.#child ?? this.parent).isLevelEnabled(level)) return;
    (this.#real()[level] as (...a: unknown[]) => void)(...args);
  }

  #real(): Logger {
    this.#child ??= this.parent.child(this.#bindings);
    return this.#child;
  }
}

/** Writes an info line (json-line.ts) through a request's logger, without making its child for it. */
export function writeRequestLine(log: FastifyBaseLogger, members: string, msg: string): void {
  if (!(log instanceof RequestLogger)) writeInfoLine(log as Logger, members, msg);
  else if (log.made === undefined) writeInfoLine(log.parent, log.bindingsText + members, msg);
  else writeInfoLine(log.made, members, msg);
}
