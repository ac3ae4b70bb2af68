/**
 * The model lane's request and reply: plain objects with what the gateway's
 * code uses of Fastify's (exchange.ts), behaving as Fastify's do where that
 * code can tell: header names lower-cased, `statusCode` the response's,
 * `elapsedTime` from arrival to the response's end, a string sent as it is
 * (text/plain unless typed), anything else as JSON, and a hijacked reply
 * left to its route.
 */
import type { IncomingHttpHeaders, IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { FastifyBaseLogger } from 'fastify';
import type { AuthenticatedKey } from '../../auth/key-store.ts';
import type { UsageRecorder } from '../../billing/usage-recorder.ts';
import { NOOP_SPAN, type TraceSpan } from '../../observability/tracing.ts';
import type { GatewayReply, GatewayRequest } from '../exchange.ts';

type HeaderValue = number | string | string[];

export class LaneRequest implements GatewayRequest {
  readonly id: string;
  readonly raw: IncomingMessage;
  readonly headers: IncomingHttpHeaders;
  readonly method: string;
  body: unknown = undefined;
  bodyText: string | undefined = undefined;
  key: AuthenticatedKey | null = null;
  usage: UsageRecorder | null = null;
  trace: TraceSpan = NOOP_SPAN;
  routeUrl = 'unmatched';
  log: FastifyBaseLogger;

  constructor(id: string, raw: IncomingMessage, log: FastifyBaseLogger) {
    this.id = id;
    this.raw = raw;
    this.headers = raw.headers;
    this.method = raw.method ?? 'POST';
    this.log = log;
  }
}

/** How the lane writes an answer: once it may leave (the ledger's rows durable), head and body at once. */
export type LaneSend = (reply: LaneReply, payload: string | undefined) => void;

export class LaneReply implements GatewayReply {
  readonly raw: ServerResponse;
  readonly #startedAt: number;
  readonly #send: LaneSend;
  #endedAt: number | undefined;
  #headers: Record<string, HeaderValue> = {};
  #hijacked = false;
  #sent = false;

  constructor(raw: ServerResponse, startedAt: number, send: LaneSend) {
    this.raw = raw;
    this.#startedAt = startedAt;
    this.#send = send;
  }

  get statusCode(): number {
    return this.raw.statusCode;
  }

  get elapsedTime(): number {
    return (this.#endedAt ?? performance.now()) - this.#startedAt;
  }

  /** Whether the route took the response over, or an answer was sent: either way the lane is done with it. */
  get settled(): boolean {
    return this.#hijacked || this.#sent;
  }

  /** The headers set on the reply, to be written with its head. */
  get headersToWrite(): Record<string, HeaderValue> {
    return this.#headers;
  }

  /** The response's last byte is out: `elapsedTime` stops here. */
  ended(): void {
    this.#endedAt = performance.now();
  }

  header(name: string, value: unknown): this {
    this.#headers[name.toLowerCase()] = value === undefined ? '' : (value as HeaderValue);
    return this;
  }

  headers(values: OutgoingHttpHeaders): this {
    for (const name in values) {
      if (Object.hasOwn(values, name)) this.header(name, values[name]);
    }
    return this;
  }

  getHeaders(): Record<string, HeaderValue | undefined> {
    return { ...this.raw.getHeaders(), ...this.#headers };
  }

  code(status: number): this {
    if (!Number.isInteger(status) || status < 100 || status > 599) {
      throw new RangeError(`invalid status code: ${status}`);
    }
    this.raw.statusCode = status;
    return this;
  }

  type(contentType: string): this {
    return this.header('content-type', contentType);
  }

  hijack(): this {
    this.#hijacked = true;
    return this;
  }

  send(payload?: unknown): this {
    if (this.settled) return this;
    this.#sent = true;
    let text: string | undefined;
    if (payload === undefined || payload === null) text = undefined;
    else if (typeof payload === 'string') {
      text = payload;
      this.#headers['content-type'] ??= 'text/plain; charset=utf-8';
    } else {
      text = JSON.stringify(payload);
      this.#headers['content-type'] ??= 'application/json; charset=utf-8';
    }
    this.#send(this, text);
    return this;
  }
}
