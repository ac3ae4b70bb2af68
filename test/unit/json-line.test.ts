/**
 * The request line is written without pino's general formatting
 * (json-line.ts): it must come out byte for byte as pino writes the same
 * fields, for any key name, model or route a client can send, with or without
 * a key, usage, a trace id or a price; not at all when info is off; and
 * through pino itself when the logger does more per line (a mixin).
 */
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it, mock } from 'node:test';
import type { FastifyReply, FastifyRequest } from 'fastify';
import pino from 'pino';
import { writeInfoLine } from '../../src/observability/json-line.ts';
import { createLogger, type Logger } from '../../src/observability/logger.ts';
import { RequestLogger, writeRequestLine } from '../../src/observability/request-logger.ts';
import { requestLogger } from '../../src/server/request-log.ts';

function capture(): { lines: string[]; write(line: string): void } {
  const lines: string[] = [];
  return { lines, write: (line) => void lines.push(line) };
}

/** A deterministic generator (a failing case can be replayed). */
function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

/** Strings a client can choose: quotes, backslashes, control characters, non-ASCII, long ones. */
const ALPHABET = [
  'a',
  'Z',
  '0',
  ' ',
  '-',
  '"',
  '\\',
  '\n',
  '\t',
  '\u0001',
  '\u007f',
  'é',
  '€',
  '😀',
  '\u2028',
  '/',
];
function text(next: () => number): string {
  const length = next() < 0.1 ? 100 + Math.floor(next() * 60) : Math.floor(next() * 24);
  let out = '';
  for (let i = 0; i < length; i++) out += ALPHABET[Math.floor(next() * ALPHABET.length)];
  return out;
}

interface Case {
  request: FastifyRequest;
  reply: FastifyReply;
  /** The fields as the line had them when pino formatted it. */
  fields: Record<string, unknown>;
}

function randomCase(next: () => number, log: Logger | RequestLogger, traced: boolean): Case {
  const method = next() < 0.8 ? 'POST' : 'GET';
  const url = next() < 0.9 ? '/v1/chat/completions' : undefined;
  const status = [200, 201, 400, 401, 429, 500, 502][Math.floor(next() * 7)]!;
  const elapsedTime = next() * 2000;
  const fields: Record<string, unknown> = {
    method,
    route: url ?? 'unmatched',
    status,
    ms: Math.round(elapsedTime * 100) / 100,
  };
  const traceId = traced ? text(next) : undefined;
  if (traceId !== undefined) fields['traceId'] = traceId;
  let key: unknown = null;
  if (next() < 0.8) {
    const isMaster = next() < 0.3;
    key = { name: text(next), id: text(next), isMaster };
    fields['keyName'] = (key as { name: string }).name;
    fields['keyId'] = isMaster ? 'master' : (key as { id: string }).id;
  }
  let usage: unknown = null;
  if (next() < 0.8) {
    const cost = next() < 0.3 ? undefined : (Math.floor(next() * 5_000_000) / 1_000_000).toFixed(6);
    const u = {
      info: { modelRequested: text(next), stream: next() < 0.5 },
      lastProvider: next() < 0.1 ? 'none' : text(next),
      attempts: 1 + Math.floor(next() * 3),
      promptTokens: Math.floor(next() * 100_000),
      completionTokens: Math.floor(next() * 10_000),
      costUsd: cost,
      cacheStatus: ['bypass', 'miss', 'hit', 'semantic-hit'][Math.floor(next() * 4)],
    };
    usage = u;
    fields['model'] = u.info.modelRequested;
    fields['provider'] = u.lastProvider;
    fields['attempts'] = u.attempts;
    fields['tokens'] = { prompt: u.promptTokens, completion: u.completionTokens };
    fields['costUsd'] = cost === undefined ? null : Number(cost);
    fields['cache'] = u.cacheStatus;
    fields['stream'] = u.info.stream;
  }
  const request = { method, routeUrl: url ?? 'unmatched', key, usage, log } as unknown as FastifyRequest;
  const reply = { statusCode: status, elapsedTime } as unknown as FastifyReply;
  return { request, reply, fields };
}

describe('the request line', () => {
  beforeEach(() => mock.timers.enable({ apis: ['Date'], now: 1_796_161_837_651 }));
  afterEach(() => mock.timers.reset());

  it('is byte for byte what pino writes for the same fields (400 random requests)', () => {
    const next = random(20261201);
    for (let i = 0; i < 400; i++) {
      const ours = capture();
      const theirs = capture();
      const requestId = text(next);
      const traced = next() < 0.3;
      const parent = createLogger({ level: 'info', destination: ours });
      // Fastify's request logger is a RequestLogger (its child made only if something logs).
      const log = i % 2 === 0 ? parent.child({ requestId }) : new RequestLogger(parent, { requestId });
      const c = randomCase(next, log, traced);
      requestLogger({ sampleRate: 1 }, () => c.fields['traceId'] as string | undefined)(c.request, c.reply);
      createLogger({ level: 'info', destination: theirs }).child({ requestId }).info(c.fields, 'request');
      assert.equal(ours.lines.length, 1, `case ${i}`);
      assert.equal(ours.lines[0], theirs.lines[0], `case ${i}`);
      assert.deepEqual(JSON.parse(ours.lines[0]!).keyName, c.fields['keyName']);
    }
  });

  it('is not written when info is off', () => {
    const ours = capture();
    const log = createLogger({ level: 'warn', destination: ours }).child({ requestId: 'r' });
    writeInfoLine(log, ',"status":200', 'request');
    assert.deepEqual(ours.lines, []);
  });

  it('goes through pino when the logger adds to every line (a mixin)', () => {
    const ours = capture();
    const log = pino({ mixin: () => ({ region: 'eu' }) }, ours).child({ requestId: 'r' });
    writeInfoLine(log, ',"status":200,"keyName":"a\\"b"', 'request');
    assert.equal(ours.lines.length, 1);
    const line = JSON.parse(ours.lines[0]!);
    assert.equal(line.region, 'eu');
    assert.equal(line.status, 200);
    assert.equal(line.keyName, 'a"b');
    assert.equal(line.requestId, 'r');
    assert.equal(line.msg, 'request');
  });

  it('stays valid JSON for a name with a lone surrogate', () => {
    const ours = capture();
    const log = createLogger({ level: 'info', destination: ours });
    const c = randomCase(random(7), log, false);
    (c.request as unknown as { key: { name: string; id: string; isMaster: boolean } }).key = {
      name: 'x\ud800y',
      id: 'k1',
      isMaster: false,
    };
    requestLogger({ sampleRate: 1 })(c.request, c.reply);
    assert.equal(JSON.parse(ours.lines[0]!).keyName, 'x\ud800y');
  });
});

describe('RequestLogger (a request child made only when needed)', () => {
  beforeEach(() => mock.timers.enable({ apis: ['Date'], now: 1_796_161_837_651 }));
  afterEach(() => mock.timers.reset());

  it('writes the request line as the child would, without making it', () => {
    const ours = capture();
    const theirs = capture();
    const log = new RequestLogger(createLogger({ level: 'info', destination: ours }), { requestId: 'r"1\\' });
    writeRequestLine(log, ',"status":200', 'request');
    createLogger({ level: 'info', destination: theirs })
      .child({ requestId: 'r"1\\' })
      .info({ status: 200 }, 'request');
    assert.equal(log.made, undefined);
    assert.deepEqual(ours.lines, theirs.lines);
  });

  it('makes the child for any other line at or above the level, and keeps it', () => {
    const ours = capture();
    const theirs = capture();
    const log = new RequestLogger(createLogger({ level: 'info', destination: ours }), { requestId: 'r2' });
    const child = createLogger({ level: 'info', destination: theirs }).child({ requestId: 'r2' });
    log.debug({ code: 'x' }, 'below the level');
    assert.equal(log.made, undefined, 'a dropped line made the child');
    log.warn({ code: 'upstream_timeout' }, 'stream failed after start');
    child.warn({ code: 'upstream_timeout' }, 'stream failed after start');
    const made = log.made;
    assert.ok(made !== undefined);
    log.error('plain message');
    child.error('plain message');
    writeRequestLine(log, ',"status":500', 'request');
    child.info({ status: 500 }, 'request');
    assert.equal(log.made, made, 'the child was made again');
    assert.deepEqual(ours.lines, theirs.lines);
    assert.equal(JSON.parse(ours.lines[0]!).requestId, 'r2');
  });

  it("carries the request's bindings into a child of it, and answers for its level", () => {
    const ours = capture();
    const log = new RequestLogger(createLogger({ level: 'info', destination: ours }), { requestId: 'r3' });
    assert.equal(log.level, 'info');
    log.child({ routing: { rule: 'cheap' } }).info('routed');
    const line = JSON.parse(ours.lines[0]!);
    assert.equal(line.requestId, 'r3');
    assert.deepEqual(line.routing, { rule: 'cheap' });
    log.level = 'error';
    log.warn('dropped now');
    assert.equal(ours.lines.length, 1);
  });

  it('is a plain child when the route asks for its own level or serializers', () => {
    const parent = createLogger({ level: 'info', destination: capture() });
    const factory = RequestLogger.factory;
    assert.ok(factory(parent, { requestId: 'a' }, {}) instanceof RequestLogger);
    const leveled = factory(parent, { requestId: 'b' }, { level: 'debug' });
    assert.ok(!(leveled instanceof RequestLogger));
    assert.equal(leveled.level, 'debug');
  });
});
